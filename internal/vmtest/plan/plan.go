// Package plan is the contract between the vmtest host side and its guest
// runner: the JSON plan the host packs into the initramfs, and the marker
// lines the runner prints on the console.
package plan

// Path is where the host packs the plan in the initramfs.
const Path = "/vmtest/plan.json"

// Console markers printed by the runner, each on a line of its own.
const (
	// StartMarker starts the line printed when /init begins, followed by
	// " uptime=SECONDS" (the guest's /proc/uptime).
	StartMarker = "INITOS-VMTEST: runner start"
	// ExitMarker starts the last line, followed by the exit status of the
	// guest test binary (or -1 when the runner itself failed).
	ExitMarker = "INITOS-VMTEST: exit "
	// PowerCutMarker, printed by a guest test (vmtest.PowerCut), makes a
	// VM.RunCut boot kill qemu at once: a power cut.
	PowerCutMarker = "INITOS-VMTEST: power cut"
)

// Module is a kernel module to load, in order, before the tests run.
type Module struct {
	Path   string `json:"path"`   // absolute path in the guest
	Params string `json:"params"` // module parameters, "" for none
	// Optional modules (soft dependencies) may fail to load.
	Optional bool `json:"optional,omitempty"`
}

// Plan is what the runner does.
type Plan struct {
	Modules []Module `json:"modules"` // loaded in order (dependencies first)
	Devices []string `json:"devices"` // wait for these nodes after loading (e.g. /dev/vda)
	Binary  string   `json:"binary"`  // test binary to run
	Args    []string `json:"args"`    // its arguments (-test.v=test2json, -test.run=...)
	Dir     string   `json:"dir"`     // its working directory
	Env     []string `json:"env"`     // its environment
	Output  string   `json:"output"`  // where its stdout and stderr go, e.g. /dev/ttyS1
}
