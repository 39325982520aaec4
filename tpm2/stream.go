package tpm2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/google/go-tpm/tpm2/transport"
)

// framing is how TPM commands travel over a byte stream.
type framing int

const (
	// framingRaw sends the command bytes as they are and reads one response
	// (its size is in the 10-byte response header): swtpm's socket mode.
	framingRaw framing = iota
	// framingMSSim is the Microsoft/TCG reference simulator protocol
	// (TpmTcpProtocol.h): u32 TPM_SEND_COMMAND, u8 locality, u32 length,
	// command; then u32 length, response, u32 status (0).
	framingMSSim
)

const (
	mssimSendCommand = 8
	tpmHeaderSize    = 10 // tag u16, size u32, code u32
	maxResponse      = 1 << 16
)

// stream is a transport.TPMCloser over a connected socket.
type stream struct {
	mu sync.Mutex
	c  net.Conn
	f  framing
}

func newStream(c net.Conn, f framing) *stream { return &stream{c: c, f: f} }

// Send implements transport.TPM.
func (s *stream) Send(cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(cmd); err != nil {
		return nil, fmt.Errorf("send TPM command to %s: %w", s.c.RemoteAddr(), err)
	}
	rsp, err := s.read()
	if err != nil {
		return nil, fmt.Errorf("read TPM response from %s: %w", s.c.RemoteAddr(), err)
	}
	return rsp, nil
}

func (s *stream) write(cmd []byte) error {
	if s.f == framingRaw {
		_, err := s.c.Write(cmd)
		return err
	}
	b := binary.BigEndian.AppendUint32(nil, mssimSendCommand)
	b = append(b, 0) // locality 0
	b = binary.BigEndian.AppendUint32(b, uint32(len(cmd)))
	_, err := s.c.Write(append(b, cmd...))
	return err
}

func (s *stream) read() ([]byte, error) {
	if s.f == framingRaw {
		return readRaw(s.c)
	}
	var n uint32
	if err := binary.Read(s.c, binary.BigEndian, &n); err != nil {
		return nil, err
	}
	if n < tpmHeaderSize || n > maxResponse {
		return nil, fmt.Errorf("simulator response length %d out of range", n)
	}
	rsp := make([]byte, n+4)
	if _, err := io.ReadFull(s.c, rsp); err != nil {
		return nil, err
	}
	if st := binary.BigEndian.Uint32(rsp[n:]); st != 0 {
		return nil, fmt.Errorf("simulator status %d", st)
	}
	return rsp[:n], nil
}

// readRaw reads one TPM response whose length is in its header.
func readRaw(r io.Reader) ([]byte, error) {
	hdr := make([]byte, tpmHeaderSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[2:6])
	if n < tpmHeaderSize || n > maxResponse {
		return nil, fmt.Errorf("response size %d out of range", n)
	}
	rsp := make([]byte, n)
	copy(rsp, hdr)
	if _, err := io.ReadFull(r, rsp[tpmHeaderSize:]); err != nil {
		return nil, err
	}
	return rsp, nil
}

// Close implements io.Closer.
func (s *stream) Close() error {
	err := s.c.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Warning response codes after which the same command is simply sent
// again (TPM 2.0 Part 2, 6.6.3; tpm2-tss does the same): the command did
// not execute, so session nonces are unchanged.
const (
	rcYielded = 0x908
	rcTesting = 0x90A
	rcRetry   = 0x922
	maxResend = 20
)

// retrying resends commands the TPM answered with a retry warning.
type retrying struct{ t transport.TPM }

// withRetry wraps t unless it already retries.
func withRetry(t transport.TPM) transport.TPM {
	if _, ok := t.(retrying); ok {
		return t
	}
	return retrying{t}
}

// Send implements transport.TPM.
func (r retrying) Send(cmd []byte) ([]byte, error) {
	for i := 0; ; i++ {
		rsp, err := r.t.Send(cmd)
		if err != nil || len(rsp) < tpmHeaderSize || i == maxResend {
			return rsp, err
		}
		switch binary.BigEndian.Uint32(rsp[6:10]) {
		case rcYielded, rcTesting, rcRetry:
			continue
		}
		return rsp, nil
	}
}
