package update

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"initos/verity"
)

// ErrModules reports a modules image that does not match the root hash in
// the UKI's signed config.
var ErrModules = errors.New("modules image")

// VerifyModules checks a modules image against the UKI's signed config,
// as the initrd's dm-verity mapping will: the verity superblock at the
// hash offset must agree with the config (hash type 1, sha256, 4096-byte
// blocks, the data size, the salt), and every data and hash block must
// hash up to the config's root hash.
func VerifyModules(f io.ReaderAt, m ModulesImage) error {
	root, err := hex.DecodeString(m.RootHash)
	if err != nil {
		return fmt.Errorf("%w %s: root hash %q: %w", ErrModules, m.File, m.RootHash, err)
	}
	salt, err := hex.DecodeString(m.Salt)
	if err != nil {
		return fmt.Errorf("%w %s: salt %q: %w", ErrModules, m.File, m.Salt, err)
	}
	sb, err := verity.ReadSuperblock(f, m.HashOffset)
	if err != nil {
		return fmt.Errorf("%w %s: no verity superblock at %d: %w", ErrModules, m.File, m.HashOffset, err)
	}
	alg, _ := sb.AlgorithmName()
	switch {
	case sb.HashType != 1 || alg != "sha256" || sb.DataBlockSize != 4096 || sb.HashBlockSize != 4096:
		return fmt.Errorf("%w %s: verity superblock: hash type %d, %s, blocks %d/%d: want type 1, sha256, 4096/4096",
			ErrModules, m.File, sb.HashType, alg, sb.DataBlockSize, sb.HashBlockSize)
	case sb.DataBlocks != uint64(m.DataSize/4096):
		return fmt.Errorf("%w %s: verity superblock: %d data blocks, the signed config says %d", ErrModules, m.File, sb.DataBlocks, m.DataSize/4096)
	case !bytes.Equal(sb.Salt[:sb.SaltSize], salt):
		return fmt.Errorf("%w %s: verity superblock: salt %x, the signed config says %x", ErrModules, m.File, sb.Salt[:sb.SaltSize], salt)
	}
	r, err := verity.Open(f, m.HashOffset, m.DataSize, verity.Params{}, root)
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrModules, m.File, err)
	}
	if err := r.Verify(f, f); err != nil {
		return fmt.Errorf("%w %s does not match the root hash %s of the UKI's signed config: %w", ErrModules, m.File, m.RootHash, err)
	}
	return nil
}
