package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// run runs the stages in order; the first failure ends the demo.
func (d *demo) run(ctx context.Context) error {
	var err error
	if d.sshPort, err = freePort(); err != nil {
		return err
	}
	if d.regPort, err = startRegistry(); err != nil {
		return err
	}
	defer func() {
		if d.vm != nil && d.vm.cur != nil {
			d.vm.cur.stop() // qemu and swtpm end with the demo
		}
	}()
	for _, stage := range []func(context.Context) error{d.stageBuild, d.stageInstall, d.stageBoot, d.stageUpgrade, d.stageBroken, d.stageTamper} {
		if err := stage(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stageInstall is stage 2: the stick boots in setup mode and installs.
func (d *demo) stageInstall(ctx context.Context) error {
	d.n.stage("2. A new machine (OVMF in Secure Boot setup mode, swtpm, a blank 4 GiB disk) boots the USB stick: unattended install")
	if err := d.newMachine(); err != nil {
		return err
	}
	d.n.say("qemu: OVMF_CODE_4M.secboot.fd, an empty variable store, swtpm, usb.img + target.img (qemu TCG)")
	r := d.boot(ctx, 40*time.Minute)
	if err := r.finish(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	for _, want := range []string{"Secure Boot keys enrolled", "installed: powering off"} {
		if !r.c.contains(want) {
			return fmt.Errorf("install: the console lacks %q (console: %s)", want, consoleLog(r))
		}
	}
	return nil
}

// stageBoot is stage 3: the installed disk alone, to multi-user.target;
// initos ctl over SSH.
func (d *demo) stageBoot(ctx context.Context) error {
	d.n.stage("3. The stick pulled out: the disk boots under Secure Boot, the TPM unlocks, debianhost reaches multi-user.target")
	d.vm.m.Unplug(0)
	if err := d.knownHosts(); err != nil {
		return err
	}
	r := d.boot(ctx, 60*time.Minute) // this boot also runs stages 4 and 5
	// systemd stops printing its status on the console once the serial
	// getty runs there: multi-user.target is checked over SSH.
	if err := r.wait(ctx, r.c.on(`Reached target.*[Mm]ulti-[Uu]ser|Started .*ssh\.service`)); err != nil {
		return fmt.Errorf("debianhost did not start sshd: %w", err)
	}
	d.ctl = []string{"ctl", "--host", fmt.Sprintf("127.0.0.1:%d", d.sshPort), "--identity", d.p("owner", "id_ed25519"),
		"--known-hosts", d.p("owner", "known_hosts")}
	if err := d.waitSSH(ctx); err != nil {
		return err
	}
	for _, c := range [][]string{
		{"systemctl is-system-running --wait && systemctl is-active multi-user.target"},
		{"initos", "slot", "status"},
		{"initos", "tpm", "pcrs", "7", "11", "15"},
		{"findmnt", "-no", "SOURCE,FSTYPE", "/"},
	} {
		if err := d.n.run(ctx, cmd{name: "initos", args: append(d.ctl, c...)}); err != nil {
			return err
		}
	}
	return nil
}

// knownHosts pins the host's SSH key (from the owner's layer).
func (d *demo) knownHosts() error {
	pub, err := os.ReadFile(d.p("owner", "hostkeys", "etc", "ssh", "ssh_host_ed25519_key.pub"))
	if err != nil {
		return err
	}
	f := strings.Fields(string(pub))
	line := fmt.Sprintf("[127.0.0.1]:%d %s %s\n", d.sshPort, f[0], f[1])
	return os.WriteFile(d.p("owner", "known_hosts"), []byte(line), 0o644)
}

// waitSSH waits until the host's sshd answers (it starts with
// multi-user.target).
func (d *demo) waitSSH(ctx context.Context) error {
	deadline := time.Now().Add(scaled(5 * time.Minute))
	for {
		err := d.n.run(ctx, cmd{name: "initos", args: append(d.ctl, "true"), quiet: true})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd did not answer: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
}

// stageUpgrade is stage 4: a new build, published, and the A/B upgrade.
func (d *demo) stageUpgrade(ctx context.Context) error {
	d.n.stage("4. An A/B upgrade: a new build (security version 2) published to a registry; the host stages it, tries it, blesses it")
	reg := fmt.Sprintf("127.0.0.1:%d/initos/boot:2", d.regPort)
	if err := d.build(ctx, "boot2", "demo 2", 2, d.cmdline, "", "--publish", reg); err != nil {
		return err
	}
	from := "10.0.2.100:5000/initos/boot:2" // the registry, as the host reaches it
	if err := d.n.run(ctx, cmd{name: "initos", args: append(d.ctl, "upgrade", "--from", from)}); err != nil {
		return fmt.Errorf("the upgrade was not blessed: %w", err)
	}
	return d.n.run(ctx, cmd{name: "initos", args: append(d.ctl, "initos", "slot", "status")})
}

// stageBroken is stage 5: a build whose root init is missing; its trial
// fails and the firmware comes back to the blessed slot on its own.
func (d *demo) stageBroken(ctx context.Context) error {
	d.n.stage("5. A broken upgrade (its signed command line names a missing init): the trial fails, the machine falls back on its own")
	reg := fmt.Sprintf("127.0.0.1:%d/initos/boot:3", d.regPort)
	if err := d.build(ctx, "boot3", "demo 3 (broken)", 3, d.cmdline+" init=/sbin/missing", "", "--publish", reg); err != nil {
		return err
	}
	err := d.n.run(ctx, cmd{name: "initos", args: append(d.ctl, "upgrade", "--from", "10.0.2.100:5000/initos/boot:3")})
	if err == nil {
		return fmt.Errorf("the broken upgrade was blessed")
	}
	d.n.say("exit status %d: the trial failed, as it must", exitStatus(err))
	if err := d.n.run(ctx, cmd{name: "initos", args: append(d.ctl, "initos", "slot", "status")}); err != nil {
		return err
	}
	d.n.run(ctx, cmd{name: "initos", args: append(d.ctl, "systemctl", "poweroff")}) // the session ends with the host
	if err := d.vm.cur.finish(); err != nil {
		return fmt.Errorf("power off: %w", err)
	}
	return nil
}
