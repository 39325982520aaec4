package boot

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"initos/bootconfig"
)

// stepBoot returns a Boot whose paths live in a temporary directory, with
// the given kernel command line and initrd config (nil: none).
func stepBoot(t *testing.T, cmdline string, cfg []byte) *Boot {
	t.Helper()
	root := t.TempDir()
	p := Paths{Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys"), Dev: filepath.Join(root, "dev"),
		Run: filepath.Join(root, "run"), Config: filepath.Join(root, "etc/initos/initrd.json"),
		Modules: filepath.Join(root, "lib/modules"), Sysroot: filepath.Join(root, "sysroot"),
		PCRSignature: filepath.Join(root, ".extra/sig.json"), PCRPublicKey: filepath.Join(root, ".extra/key.pem")}
	writeFiles(t, root, map[string]string{"proc/cmdline": cmdline + "\n"})
	if cfg != nil {
		writeFiles(t, root, map[string]string{"etc/initos/initrd.json": string(cfg)})
	}
	return New(Options{Paths: p})
}

func TestReadConfig(t *testing.T) {
	release, err := kernelRelease()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cmdline, cfg string
		steps              []string
		err                string
	}{
		{"boot", "quiet", `{"version":1,"mode":"boot"}`, []string{StepRollback, StepUnlock, StepRoot, StepHandover}, ""},
		{"install", "quiet", `{"version":1,"mode":"install"}`, []string{StepInstall}, ""},
		{"install from cmdline", "initos.mode=install", `{"version":1,"mode":"boot","kernel":"` + release + `"}`, []string{StepInstall}, ""},
		{"missing", "quiet", "", nil, "initrd.json missing: this initrd was not built by `initos initrd build`"},
		{"malformed", "quiet", `{"version":1,"mode":"boot","unlock":{"uuids":["x"]}}`, nil, `invalid initrd config: unlock.uuids[0]: "x" is not a UUID`},
		{"kernel", "quiet", `{"version":1,"mode":"boot","kernel":"5.10.0-other"}`, nil, "initrd config: built for kernel 5.10.0-other, running " + release},
		{"cmdline", "initos.slot=z", `{"version":1,"mode":"boot"}`, nil, `initos.slot="z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg []byte
			if tt.cfg != "" {
				cfg = []byte(tt.cfg)
			}
			b := stepBoot(t, tt.cmdline, cfg)
			err := b.readConfig(context.Background())
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("readConfig = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("readConfig = %v", err)
			}
			if diff := cmp.Diff(tt.steps, b.Steps()[len(b.commonSteps()):]); diff != "" {
				t.Errorf("mode steps (-want +got):\n%s", diff)
			}
			if b.Release != release || b.Config == nil {
				t.Errorf("release %q config %v", b.Release, b.Config)
			}
		})
	}
}

func TestStepNames(t *testing.T) {
	b := New(Options{})
	want := []string{"mount", "config", "early-modules", "efivars", "measure", "esp", "trial", "modules", "coldplug"}
	if diff := cmp.Diff(want, b.Steps()); diff != "" {
		t.Errorf("Steps() (-want +got):\n%s", diff)
	}
	b.Settings.Mode = bootconfig.ModeBoot
	if got := len(b.modeSteps()); got != 4 {
		t.Errorf("boot mode steps = %d, want rollback, unlock, root, handover", got)
	}
}

// TestInstallStep: the install branch runs the installer, or says there
// is none.
func TestInstallStep(t *testing.T) {
	b := New(Options{})
	if err := b.install(context.Background()); err != ErrNoInstaller {
		t.Errorf("install without installer = %v, want ErrNoInstaller", err)
	}
	ran := false
	b = New(Options{Install: func(ctx context.Context, b *Boot) error { ran = true; return nil }})
	if err := b.install(context.Background()); err != nil || !ran {
		t.Errorf("install = %v (ran %v), want the installer run", err, ran)
	}
}
