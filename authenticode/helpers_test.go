package authenticode

import (
	"encoding/hex"
	osexec "os/exec"
	"testing"

	"initos/internal/testenv"
)

// exec runs an oracle that is expected to fail or whose output is parsed,
// returning its combined output.
func exec(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := osexec.Command(testenv.Tool(t, name), args...).CombinedOutput()
	return string(out), err
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
