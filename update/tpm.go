package update

import (
	"fmt"

	"initos/tpm2"
)

// minVersion reads the TPM's anti-rollback minimum. checked is false
// when the system has no TPM (OpenTPM nil).
func (s *System) minVersion() (st tpm2.RollbackState, checked bool, err error) {
	if s.OpenTPM == nil {
		return st, false, nil
	}
	t, err := s.OpenTPM()
	if err != nil {
		return st, false, fmt.Errorf("anti-rollback: open the TPM: %w", err)
	}
	defer t.Close()
	st, err = tpm2.ReadMinVersion(t, s.RollbackIndex)
	if err != nil {
		return st, false, fmt.Errorf("anti-rollback: %w", err)
	}
	return st, true, nil
}

// raiseMin raises the TPM's anti-rollback minimum to v (never lowers it).
func (s *System) raiseMin(v uint64) (before, after uint64, err error) {
	if s.OpenTPM == nil {
		return 0, 0, fmt.Errorf("anti-rollback: no TPM")
	}
	t, err := s.OpenTPM()
	if err != nil {
		return 0, 0, fmt.Errorf("anti-rollback: open the TPM: %w", err)
	}
	defer t.Close()
	before, after, err = tpm2.RaiseMinVersion(t, s.RollbackIndex, v, s.OwnerAuth)
	if err != nil {
		return before, after, fmt.Errorf("anti-rollback: %w", err)
	}
	return before, after, nil
}
