package install

import (
	"testing"

	"initos/internal/installtest"
)

const testRelease = installtest.Release

var fixedTime = installtest.Time

type fixture = installtest.Fixture

func newFixture(t testing.TB, dir string) *fixture { return installtest.New(t, dir) }

func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	installtest.WriteFiles(t, dir, files)
}

func hashFile(t testing.TB, path string) string { return installtest.HashFile(t, path) }

// fxConfig returns an install config for the fixture.
func fxConfig(fx *fixture, disks ...string) *Config {
	return &Config{Disks: disks, Yes: true, UKI: fx.UKI, Modules: fx.Modules, Image: fx.Image,
		SecureBoot: SecureBootConfig{Keys: fx.Keys}, ESPSize: 40 << 20, MinRootSize: 200 << 20}
}
