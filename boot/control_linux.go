package boot

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"

	"initos/bootconfig"
	"initos/control"
	"initos/tpm2"
)

// ServeControl is the failure handler with the control plane (docs/control.md):
// when the initrd config lists SSH keys, it brings the network up and serves
// SSH with the TPM-resident host key until an operator unlocks the volumes
// (the boot then resumes: Retry), reboots or powers off (the backend does it),
// or the failure timeout passes (Reboot). Without keys, or when the network
// or the TPM cannot serve, it falls back to WaitAndReboot. Never a shell.
var ServeControl FailureHandler = FailureHandlerFunc(serveControl)

func serveControl(ctx context.Context, b *Boot, f *Failure) Action {
	if b.Config == nil || len(b.Config.Control.AuthorizedKeys)+len(b.Config.Control.UserCAKeys) == 0 {
		return WaitAndReboot.HandleFailure(ctx, b, f)
	}
	if timeout := b.failureTimeout(); timeout >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	act, err := b.serve(ctx, f)
	if err != nil {
		b.Log.Printf("control: %v: no control plane", err)
		return WaitAndReboot.HandleFailure(ctx, b, f)
	}
	return act
}

// serve runs the SSH server until an unlock (Retry) or ctx ends (Reboot).
func (b *Boot) serve(ctx context.Context, f *Failure) (Action, error) {
	if err := b.loadNICs(); err != nil {
		b.Log.Printf("control: %v", err)
	}
	t, err := tpm2.Open(tpm2.Device{})
	if err != nil {
		return Reboot, fmt.Errorf("host key: %w", err)
	}
	defer t.Close()
	host, key, err := control.HostKeySigner(t)
	if err != nil {
		return Reboot, fmt.Errorf("host key: %w", err)
	}
	defer key.Close()
	cc := b.Config.Control
	netw, err := control.BringUp(ctx, netConfig(cc.Network), b.Log.Printf)
	if err != nil {
		return Reboot, fmt.Errorf("network: %w", err)
	}
	defer netw.Close()
	be := &controlBackend{b: b, f: f}
	srv, err := control.NewServer(control.Config{HostKey: host, AuthorizedKeys: cc.AuthorizedKeys, UserCAKeys: cc.UserCAKeys,
		Addr: fmt.Sprintf(":%d", cc.SSHPort()), Install: b.Settings.Mode == bootconfig.ModeInstall, Logf: b.Log.Printf}, be)
	if err != nil {
		return Reboot, err
	}
	b.Log.Printf("control: serving SSH on port %d (host key %s) until %s", cc.SSHPort(), ssh.FingerprintSHA256(host.PublicKey()), deadline(ctx))
	sctx, stop := context.WithCancel(ctx)
	unlocked := false
	go func() {
		select {
		case <-srv.Unlocked():
			unlocked = true
		case <-sctx.Done():
		}
		stop()
	}()
	srv.ListenAndServe(sctx)
	if unlocked {
		return Retry, nil
	}
	return Reboot, nil
}

// loadNICs waits for the network drivers: the background coldplug, or,
// for a boot that failed before it started, a coldplug now.
func (b *Boot) loadNICs() error {
	if b.flowDone(StepColdplug) {
		return b.waitColdplug()
	}
	if b.index == nil {
		return nil
	}
	return b.coldplugRun(context.Background())
}

// flowDone reports whether a step succeeded.
func (b *Boot) flowDone(step string) bool {
	for _, s := range b.flow.Done() {
		if s == step {
			return true
		}
	}
	return false
}

func netConfig(n bootconfig.Network) control.NetConfig {
	c := control.NetConfig{Mode: n.Mode, Address: n.Address, Gateway: n.Gateway}
	if n.Interface != "" {
		c.Interfaces = []string{n.Interface}
	}
	return c
}

func deadline(ctx context.Context) string {
	if d, ok := ctx.Deadline(); ok {
		return "a reboot in " + time.Until(d).Round(time.Second).String()
	}
	return "an operator acts"
}
