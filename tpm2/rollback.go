package tpm2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// RollbackIndex is the default NV index holding InitOS's minimum security
// version: in the owner range of the TCG handle registry (0x01000000 to
// 0x013FFFFF), its low bytes taken from the InitOS vendor GUID
// d1576472-... .
const RollbackIndex tpm2.TPMHandle = 0x01157647

// rollbackSize is the index's data: the minimum security version, a
// big-endian uint64 (PolicyNV compares big-endian unsigned integers).
const rollbackSize = 8

// ErrRollbackIndex reports an NV index at the rollback handle that is not
// one RollbackPublic describes (other attributes, size or policy): it was
// not made by InitOS, and its value must not be trusted.
var ErrRollbackIndex = errors.New("the anti-rollback NV index is not the one InitOS defines")

// RollbackPublic is the public area of the anti-rollback index at handle
// (0: RollbackIndex) once written: an ordinary 8-byte index, written only
// with owner authorization and only whole (OWNERWRITE, WRITEALL), read by
// anyone with its empty auth value (AUTHREAD), outside the dictionary-attack
// logic (NO_DA). Its Name, which PolicyNV hashes, follows from it alone, so
// a build machine computes it without the TPM.
func RollbackPublic(handle tpm2.TPMHandle) tpm2.TPMSNVPublic {
	if handle == 0 {
		handle = RollbackIndex
	}
	return tpm2.TPMSNVPublic{
		NVIndex: handle,
		NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{
			OwnerWrite: true, WriteAll: true, AuthRead: true, NoDA: true,
			NT: tpm2.TPMNTOrdinary, Written: true,
		},
		DataSize: rollbackSize,
	}
}

// RollbackName returns the TPM Name of the written anti-rollback index at
// handle (0: RollbackIndex).
func RollbackName(handle tpm2.TPMHandle) ([]byte, error) {
	pub := RollbackPublic(handle)
	n, err := tpm2.NVName(&pub)
	if err != nil {
		return nil, fmt.Errorf("anti-rollback index name: %w", err)
	}
	return n.Buffer, nil
}

// RollbackState is what ReadMinVersion found.
type RollbackState struct {
	Handle  tpm2.TPMHandle
	Defined bool   // the index exists (and is InitOS's)
	Min     uint64 // the minimum security version; 0 when not defined
}

// ReadMinVersion reads the minimum security version from the anti-rollback
// index at handle (0: RollbackIndex). A missing index reads as not defined
// with minimum 0; an index with other attributes is ErrRollbackIndex.
func ReadMinVersion(t transport.TPM, handle tpm2.TPMHandle) (RollbackState, error) {
	t = withRetry(t)
	if handle == 0 {
		handle = RollbackIndex
	}
	st := RollbackState{Handle: handle}
	name, defined, err := checkRollbackIndex(t, handle)
	if err != nil || !defined {
		return st, err
	}
	rsp, err := tpm2.NVRead{
		AuthHandle: tpm2.AuthHandle{Handle: handle, Name: tpm2.TPM2BName{Buffer: name}, Auth: tpm2.PasswordAuth(nil)},
		NVIndex:    tpm2.NamedHandle{Handle: handle, Name: tpm2.TPM2BName{Buffer: name}},
		Size:       rollbackSize,
	}.Execute(t)
	if err != nil {
		return st, classify(fmt.Sprintf("read the anti-rollback index %#08x", uint32(handle)), err)
	}
	if len(rsp.Data.Buffer) != rollbackSize {
		return st, fmt.Errorf("read the anti-rollback index %#08x: %d bytes, want %d", uint32(handle), len(rsp.Data.Buffer), rollbackSize)
	}
	st.Defined, st.Min = true, binary.BigEndian.Uint64(rsp.Data.Buffer)
	return st, nil
}

// checkRollbackIndex reads the index's public area: defined is false when
// there is no index at handle; an index that is not ours is an error.
func checkRollbackIndex(t transport.TPM, handle tpm2.TPMHandle) (name []byte, defined bool, err error) {
	rsp, err := tpm2.NVReadPublic{NVIndex: handle}.Execute(t)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, classify(fmt.Sprintf("read the public area of NV index %#08x", uint32(handle)), err)
	}
	want, err := RollbackName(handle)
	if err != nil {
		return nil, false, err
	}
	if !bytes.Equal(rsp.NVName.Buffer, want) {
		pub, _ := rsp.NVPublic.Contents()
		return nil, false, fmt.Errorf("%w: index %#08x has %s", ErrRollbackIndex, uint32(handle), describeNV(pub))
	}
	return rsp.NVName.Buffer, true, nil
}

// describeNV names what differs in a foreign index, for the error.
func describeNV(pub *tpm2.TPMSNVPublic) string {
	if pub == nil {
		return "an unreadable public area"
	}
	want := RollbackPublic(pub.NVIndex)
	switch {
	case pub.DataSize != want.DataSize:
		return fmt.Sprintf("%d bytes of data, want %d", pub.DataSize, want.DataSize)
	case !pub.Attributes.Written:
		return "never been written"
	case len(pub.AuthPolicy.Buffer) != 0:
		return "an auth policy"
	}
	return fmt.Sprintf("attributes %x, want %x", tpm2.Marshal(pub.Attributes), tpm2.Marshal(want.Attributes))
}

// DefineRollbackIndex defines the anti-rollback index at handle (0:
// RollbackIndex) with owner authorization ownerAuth (nil: the empty owner
// password), and writes minimum 0 so that PolicyNV can read it (an index
// never written fails every PolicyNV). An index that already is ours is
// left as it is; one that is not is ErrRollbackIndex.
func DefineRollbackIndex(t transport.TPM, handle tpm2.TPMHandle, ownerAuth []byte) error {
	t = withRetry(t)
	if handle == 0 {
		handle = RollbackIndex
	}
	_, defined, err := checkRollbackIndex(t, handle)
	if err != nil || defined {
		return err
	}
	pub := RollbackPublic(handle)
	pub.Attributes.Written = false
	_, err = tpm2.NVDefineSpace{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(ownerAuth)},
		PublicInfo: tpm2.New2B(pub),
	}.Execute(t)
	if err != nil && !errors.Is(err, tpm2.TPMRCNVDefined) {
		return classify(fmt.Sprintf("define the anti-rollback index %#08x", uint32(handle)), err)
	}
	unwritten, err := tpm2.NVName(&pub)
	if err != nil {
		return err
	}
	return writeMin(t, handle, unwritten.Buffer, 0, ownerAuth)
}

// RaiseMinVersion raises the minimum security version in the index at
// handle (0: RollbackIndex) to v, defining the index first when missing.
// The minimum never goes down: with v at or below it, nothing is written.
// It returns the minimum before and after.
func RaiseMinVersion(t transport.TPM, handle tpm2.TPMHandle, v uint64, ownerAuth []byte) (before, after uint64, err error) {
	t = withRetry(t)
	if handle == 0 {
		handle = RollbackIndex
	}
	if err := DefineRollbackIndex(t, handle, ownerAuth); err != nil {
		return 0, 0, err
	}
	st, err := ReadMinVersion(t, handle)
	if err != nil {
		return 0, 0, err
	}
	if v <= st.Min {
		return st.Min, st.Min, nil
	}
	name, err := RollbackName(handle)
	if err != nil {
		return 0, 0, err
	}
	if err := writeMin(t, handle, name, v, ownerAuth); err != nil {
		return st.Min, st.Min, err
	}
	return st.Min, v, nil
}

// writeMin writes v (big-endian) into the index with owner authorization.
func writeMin(t transport.TPM, handle tpm2.TPMHandle, name []byte, v uint64, ownerAuth []byte) error {
	_, err := tpm2.NVWrite{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(ownerAuth)},
		NVIndex:    tpm2.NamedHandle{Handle: handle, Name: tpm2.TPM2BName{Buffer: name}},
		Data:       tpm2.TPM2BMaxNVBuffer{Buffer: binary.BigEndian.AppendUint64(nil, v)},
	}.Execute(t)
	if err != nil {
		return classify(fmt.Sprintf("write %d into the anti-rollback index %#08x", v, uint32(handle)), err)
	}
	return nil
}

// UndefineRollbackIndex deletes the anti-rollback index (owner
// authorization): for tests and for decommissioning a machine.
func UndefineRollbackIndex(t transport.TPM, handle tpm2.TPMHandle, ownerAuth []byte) error {
	t = withRetry(t)
	if handle == 0 {
		handle = RollbackIndex
	}
	rsp, err := tpm2.NVReadPublic{NVIndex: handle}.Execute(t)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil
	}
	if err != nil {
		return classify("read the anti-rollback index", err)
	}
	_, err = tpm2.NVUndefineSpace{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(ownerAuth)},
		NVIndex:    tpm2.NamedHandle{Handle: handle, Name: rsp.NVName},
	}.Execute(t)
	return classify("undefine the anti-rollback index", err)
}
