package install

import (
	"context"
	"errors"
	"strings"
	"testing"

	"initos/efivar"
)

// TestSecureBootStep: keys are enrolled in setup mode (then a reboot is
// needed), an off Secure Boot is refused unless forced.
func TestSecureBootStep(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	for _, tc := range []struct {
		name         string
		setup, sb    byte
		keys, force  bool
		status, err  string
		wantEnrolled bool
	}{
		{"setup mode with keys", 1, 0, true, false, "keys enrolled", ErrRebootNeeded.Error(), true},
		{"setup mode with keys, forced", 1, 0, true, true, "keys enrolled, continuing", "", true},
		{"setup mode without keys", 1, 0, false, false, "", "setup mode (SetupMode=1)", false},
		{"on", 0, 1, true, false, "on", "", false},
		{"off", 0, 0, true, false, "", "Secure Boot is off (SecureBoot=0)", false},
		{"off, forced", 0, 0, false, true, "off (forced)", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &efivar.Dir{Path: t.TempDir()}
			for name, v := range map[string]byte{"SetupMode": tc.setup, "SecureBoot": tc.sb} {
				if err := s.Set(name, efivar.GlobalVariable, efivar.BootserviceAccess|efivar.RuntimeAccess, []byte{v}); err != nil {
					t.Fatal(err)
				}
			}
			cfg := fxConfig(fx, "vda")
			cfg.Force = tc.force
			if !tc.keys {
				cfg.SecureBoot.Keys = ""
			}
			r := newRun(cfg, Options{})
			r.efi, r.plan = s, &Plan{}
			status, err := r.secureBoot(context.Background())
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("secureBoot() error = %v, want %q", err, tc.err)
			}
			if !strings.HasPrefix(status, tc.status) {
				t.Errorf("secureBoot() status = %q, want %q", status, tc.status)
			}
			_, _, perr := s.Get("PK", efivar.GlobalVariable)
			if enrolled := perr == nil; enrolled != tc.wantEnrolled {
				t.Errorf("PK enrolled = %v, want %v", enrolled, tc.wantEnrolled)
			}
			if tc.err == ErrRebootNeeded.Error() && !errors.Is(err, ErrRebootNeeded) {
				t.Errorf("secureBoot() = %v, want ErrRebootNeeded", err)
			}
		})
	}
}
