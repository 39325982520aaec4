package trial

import (
	"errors"
	"fmt"

	gotpm "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"initos/tpm2"
)

// ErrRolledBack reports a UKI whose security version is below the TPM's
// minimum: it was retired and must not get the disk key.
var ErrRolledBack = tpm2.ErrRolledBack

// RollbackError says which version met which minimum.
type RollbackError struct {
	Version uint64          // the UKI's security version
	Min     uint64          // the minimum in the TPM
	Index   gotpm.TPMHandle // the NV index holding it
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("anti-rollback: this UKI has security version %d, below the minimum %d recorded in TPM NV index %#08x: "+
		"it was retired by a newer blessed upgrade and gets no disk key (boot the other slot, or install a UKI with version %d or higher)",
		e.Version, e.Min, uint32(e.Index), e.Min)
}

// Is makes errors.Is(err, ErrRolledBack) hold.
func (e *RollbackError) Is(target error) bool { return target == ErrRolledBack }

// CheckRollback refuses a security version below the minimum in the
// anti-rollback NV index at index (0: tpm2.RollbackIndex). A TPM without
// the index has minimum 0. With define set, a missing index is defined
// (minimum 0) so that policies carrying a security version can be
// satisfied from this boot on; the installer normally defines it.
func CheckRollback(t transport.TPM, index gotpm.TPMHandle, version uint64, define bool) (tpm2.RollbackState, error) {
	st, err := tpm2.ReadMinVersion(t, index)
	if err != nil {
		return st, fmt.Errorf("anti-rollback: %w", err)
	}
	if !st.Defined && define {
		if err := tpm2.DefineRollbackIndex(t, index, nil); err != nil {
			return st, fmt.Errorf("anti-rollback: %w", err)
		}
		st.Defined = true
	}
	if version < st.Min {
		return st, &RollbackError{Version: version, Min: st.Min, Index: st.Handle}
	}
	return st, nil
}

// IsRollback reports whether err is a rollback refusal (ours or the
// TPM's PolicyNV).
func IsRollback(err error) bool { return errors.Is(err, ErrRolledBack) }
