package bootdisk

import "sync"

const fleetInitPkg = "initos/internal/bootdisk/fleetinit"

// FleetInit returns the fleet test hosts' init (package fleetinit): SSH
// server, bless, network, systemctl reboot; built once per process.
var FleetInit = sync.OnceValues(func() ([]byte, error) { return goBuild(fleetInitPkg) })
