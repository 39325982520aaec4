package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// maxSocketPath is the room in sockaddr_un.sun_path, minus the NUL.
const maxSocketPath = 107

// swtpm is one running software TPM, serving one qemu boot. swtpm exits by
// itself when qemu disconnects; stop kills and reaps it in any case.
type swtpm struct {
	cmd    *exec.Cmd
	socket string
	log    string
	tmp    string // a short directory for the socket, removed by stop
	done   chan struct{}
}

// startSWTPM starts `swtpm socket --tpm2` keeping its state in stateDir,
// and waits for its control socket. Paths are absolute: swtpm may chdir.
func startSWTPM(ctx context.Context, stateDir, bootDir string) (*swtpm, error) {
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	s := &swtpm{socket: filepath.Join(bootDir, "swtpm.sock"), log: filepath.Join(bootDir, "swtpm.log"), done: make(chan struct{})}
	if len(s.socket) > maxSocketPath {
		if s.tmp, err = os.MkdirTemp("", "swtpm"); err != nil {
			return nil, fmt.Errorf("start swtpm: %w", err)
		}
		s.socket = filepath.Join(s.tmp, "swtpm.sock")
	}
	s.cmd = exec.Command(bin, "socket", "--tpm2",
		"--tpmstate", "dir="+stateDir,
		"--ctrl", "type=unixio,path="+s.socket,
		"--log", "file="+s.log+",level=1",
		"--flags", "not-need-init")
	if err := s.cmd.Start(); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	if err := s.waitSocket(ctx); err != nil {
		s.stop()
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	return s, nil
}

func (s *swtpm) waitSocket(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(s.socket); err == nil {
			return nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(s.log)
			return fmt.Errorf("swtpm exited before creating %s: %s", s.socket, log)
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", s.socket, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop terminates swtpm if it still runs, reaps it and returns its log.
// It is idempotent.
func (s *swtpm) stop() []byte {
	select {
	case <-s.done:
	default:
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.cleanup()
	log, err := os.ReadFile(s.log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return []byte(err.Error())
	}
	return log
}

func (s *swtpm) cleanup() {
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
}
