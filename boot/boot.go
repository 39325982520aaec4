package boot

import (
	"context"
	"io"

	"initos/bootconfig"
	"initos/efivar"
	"initos/image/hostconf"
	"initos/kmod"
	"initos/update/trial"
)

// Paths are the places the flow reads and mounts. The zero value means
// those of a booted initrd (DefaultPaths); tests point them elsewhere.
type Paths struct {
	Proc, Sys, Dev, Run string // early mounts
	Config              string // the signed initrd config
	Modules             string // /lib/modules of the initrd (the cpio's modules)
	PCRSignature        string // .pcrsig, as systemd-stub passes it to the initrd
	PCRPublicKey        string // .pcrpkey, likewise
	Sysroot             string // where the host root is mounted before switch_root
}

// DefaultPaths are the paths of a booted initrd.
var DefaultPaths = Paths{
	Proc: "/proc", Sys: "/sys", Dev: "/dev", Run: "/run",
	Config:       bootconfig.Path,
	Modules:      "/lib/modules",
	PCRSignature: "/.extra/tpm2-pcr-signature.json",
	PCRPublicKey: "/.extra/tpm2-pcr-public-key.pem",
	Sysroot:      "/sysroot",
}

// Options configure New. The zero value boots the real system.
type Options struct {
	Console io.Writer // the console (default: init's standard output)
	Paths   Paths     // zero: DefaultPaths
	// OpenTPM opens the TPM; nil opens the kernel's device (waiting for it
	// up to the device timeout).
	OpenTPM func(ctx context.Context) (TPM, error)
	// OnFailure is called when a step fails; nil is WaitAndReboot (one
	// line, then a reboot after the configured timeout). The control
	// plane plugs in here.
	OnFailure FailureHandler
	// Install runs the install mode (the installer plugs in here); nil
	// fails install mode with a clear message.
	Install func(ctx context.Context, b *Boot) error
	// InstallFrom runs an install from a config sent to the control
	// plane's install verb, writing progress to w (install mode only).
	InstallFrom func(ctx context.Context, b *Boot, config []byte, w io.Writer) error
}

// Boot is one run of the initrd: its inputs, what it found, and the flow.
// The control plane reads it through Failure.
type Boot struct {
	Log      *Logger
	Config   *bootconfig.Config
	Cmdline  *Cmdline
	Settings Settings
	Release  string // the running kernel (uname -r)

	ESP         *Partition // the ESP the firmware booted from
	Slot        string     // "a" or "b" (from the ESP's name), "" if unknown
	Trial       bool       // this boot is its slot's trial (update/trial)
	ModulesDir  string     // the running kernel's modules (cpio, then image)
	FirmwareDir string     // firmware in the modules image, "" without one
	Volumes     []*Volume  // the LUKS2 volumes found, and what became of them
	Host        *hostconf.Config
	Root        string // the root subvolume chosen
	Init        string // the root's init

	opts     Options
	paths    Paths
	flow     *Flow
	tpm      TPM
	index    *kmod.Index // the module index in use
	mods     *moduleLoader
	kmsg     io.WriteCloser
	watchdog *trial.Watchdog
	// pendingWatchdog is a trial's watchdog device whose driver coldplug
	// has yet to load.
	pendingWatchdog string
	pendingBegin    bool         // the other slot's trial is recorded after coldplug
	vars            efivar.Store // efivarfs, once the trial step opened it
	// activate maps an unlocked volume (dm-crypt); tests replace it.
	activate func(v *Volume) (string, error)

	coldplugDone chan struct{} // closed when the background coldplug ends
	coldplugErr  error
}

// New prepares a boot. It does not touch the system until Run.
func New(opts Options) *Boot {
	if opts.Paths == (Paths{}) {
		opts.Paths = DefaultPaths
	}
	b := &Boot{opts: opts, paths: opts.Paths}
	b.Log = NewLogger(opts.Console, nil, nil)
	b.flow = &Flow{Log: b.Log, Steps: b.commonSteps()}
	return b
}

// Step names, in order. Boot mode runs unlock, root and handover after
// coldplug; install mode runs install instead.
const (
	StepMount        = "mount"
	StepConfig       = "config"
	StepEarlyModules = "early-modules"
	StepEFI          = "efivars"
	StepMeasure      = "measure"
	StepESP          = "esp"
	StepTrial        = "trial"
	StepModules      = "modules"
	StepColdplug     = "coldplug"
	StepRollback     = "rollback"
	StepUnlock       = "unlock"
	StepRoot         = "root"
	StepHandover     = "handover"
	StepInstall      = "install"
)

func (b *Boot) commonSteps() []Step {
	return []Step{
		{StepMount, b.mountEarly},
		{StepConfig, b.readConfig},
		{StepEarlyModules, b.loadEarlyModules},
		{StepEFI, b.mountEFIVars},
		{StepMeasure, b.measureEnter},
		{StepESP, b.findESP},
		{StepTrial, b.beginTrial},
		{StepModules, b.openModulesImage},
		{StepColdplug, b.coldplug},
	}
}

// modeSteps are appended by the config step once the mode is known.
func (b *Boot) modeSteps() []Step {
	if b.Settings.Mode == bootconfig.ModeInstall {
		return []Step{{StepInstall, b.install}}
	}
	return []Step{{StepRollback, b.checkRollback}, {StepUnlock, b.unlock}, {StepRoot, b.mountRoot}, {StepHandover, b.handover}}
}

// Steps returns the names of the steps of this boot so far (the mode's
// steps appear once the config step ran).
func (b *Boot) Steps() []string {
	names := make([]string, len(b.flow.Steps))
	for i, s := range b.flow.Steps {
		names[i] = s.Name
	}
	return names
}
