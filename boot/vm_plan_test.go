package boot

// The plan of TestGuestEnroll, written by TestVMBoot into the harness's
// initramfs.

const enrollPlanPath = "/etc/initos-enroll.json"

type enrollPlan struct {
	Volumes []enrollVolume `json:"volumes"`
}

type enrollVolume struct {
	Device string `json:"device"` // e.g. /dev/vda3
	Pass   string `json:"pass"`   // its keyslot 0 passphrase
	Bind   bool   `json:"bind"`   // an InitOS binding (not for the attacker's volume)
}
