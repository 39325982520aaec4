package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"initos/control/client"
	"initos/update"
	"initos/update/trial"
)

// fakeInitosHost is an SSH server standing in for a booted host's sshd:
// it answers `initos slot status --json` and `initos upgrade ...` from a
// simulated A/B state; an upgrade "reboots" (the session ends without an
// exit status) and the next status shows the trial blessed or failed.
type fakeInitosHost struct {
	mu       sync.Mutex
	broken   bool
	boot     int
	active   string
	rec      *trial.Record
	rebooted bool
	commands []string
}

func (h *fakeInitosHost) exec(cmd string) (out string, status int, reboot bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.commands = append(h.commands, cmd)
	switch {
	case cmd == "initos slot status --json":
		if h.rebooted {
			h.rebooted, h.boot = false, h.boot+1
			h.rec.State = trial.Blessed
			if h.broken {
				h.rec.State, h.rec.Step, h.rec.Reason = trial.Failed, "after the initrd", "never blessed: the watchdog reset the machine"
			} else {
				h.active = h.rec.Slot
			}
		}
		st := update.Status{Active: h.active, BootID: fmt.Sprint(h.boot), Trial: h.rec}
		if h.rec != nil {
			st.Outcome = string(h.rec.State)
		}
		b, _ := json.Marshal(st)
		return string(b), 0, false
	case cmd == "initos upgrade --json --progress=false --from 'reg.example:5000/boot:v2?x=1'":
		h.rec = &trial.Record{Format: 1, Slot: "b", From: "a", State: trial.Staged, BuildID: "v2"}
		h.rebooted = true
		b, _ := json.Marshal(update.StageResult{Slot: "b", From: "a", UKI: &update.UKI{BuildID: "v2"}, BootNext: "Boot0001"})
		return string(b) + "\nrebooting\n", 0, true
	}
	return "no such command: " + cmd, 127, false
}

// serve accepts SSH connections with the owner's key and runs exec requests.
func (h *fakeInitosHost) serve(t *testing.T, owner ssh.PublicKey) (addr string, hostKey ssh.PublicKey) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) != string(owner.Marshal()) {
			return nil, fmt.Errorf("unknown key")
		}
		return &ssh.Permissions{}, nil
	}}
	cfg.AddHostKey(signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go h.conn(c, cfg)
		}
	}()
	return l.Addr().String(), signer.PublicKey()
}

func (h *fakeInitosHost) conn(c net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		for r := range creqs {
			if r.Type != "exec" {
				r.Reply(false, nil)
				continue
			}
			var p struct{ Cmd string }
			ssh.Unmarshal(r.Payload, &p)
			r.Reply(true, nil)
			out, status, reboot := h.exec(p.Cmd)
			ch.Write([]byte(out))
			if reboot {
				sc.Close() // the reboot: no exit status
				return
			}
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
			ch.Close()
			break
		}
	}
}

func TestCtlUpgrade(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, _ := ssh.MarshalPrivateKey(priv, "owner")
	id := filepath.Join(dir, "id")
	os.WriteFile(id, pem.EncodeToMemory(blk), 0o600)
	owner, _ := ssh.NewSignerFromKey(priv)
	good, bad := &fakeInitosHost{active: "a", boot: 1}, &fakeInitosHost{active: "a", boot: 1, broken: true}
	kh := filepath.Join(dir, "known_hosts")
	var addrs []string
	for _, h := range []*fakeInitosHost{bad, good} {
		addr, key := h.serve(t, owner.PublicKey())
		if err := client.AddKnownHost(kh, []string{addr}, key); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, addr)
	}
	common := []string{"ctl", "--identity", id, "--known-hosts", kh}
	from := []string{"upgrade", "--from", "reg.example:5000/boot:v2?x=1", "--poll", "10ms"}

	out, errs, code := runAB(t, context.Background(), append(append(common, "--host", addrs[1]), from...)...)
	if code != 0 || !strings.Contains(out, "== "+addrs[1]+": blessed (canary") || !strings.Contains(out, `slot a -> b, build "v2"`) {
		t.Errorf("ctl --host upgrade = exit %d, %q %q", code, out, errs)
	}

	hosts := filepath.Join(dir, "hosts")
	os.WriteFile(hosts, []byte(addrs[0]+"\n"+addrs[1]+"\n"), 0o644)
	good.active, good.rec = "a", nil
	seen := len(good.commands)
	out, errs, code = runAB(t, context.Background(), append(append(common, "--hosts", hosts, "--json"), from...)...)
	var res []update.HostResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || len(res) != 2 {
		t.Fatalf("ctl --hosts upgrade --json = exit %d, %q (%v) %q", code, out, err, errs)
	}
	if res[0].State != update.HostFailed || res[0].Phase != "canary" || !strings.Contains(res[0].Reason, "watchdog") || res[1].State != update.HostSkipped {
		t.Errorf("rollout results = %+v, want the canary failed and the other host skipped", res)
	}
	for _, c := range good.commands[seen:] {
		if strings.HasPrefix(c, "initos upgrade") {
			t.Errorf("the second host was upgraded after the canary failed")
		}
	}
	if !strings.Contains(errs, "rollout stopped at canary") {
		t.Errorf("stderr = %q, want the reason the rollout stopped", errs)
	}
}
