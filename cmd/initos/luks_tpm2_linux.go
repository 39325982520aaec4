package main

import (
	"flag"

	"initos/luks2"
)

// tpm2ActivateFlags adds the dm-crypt mapping flags of "luks unlock-tpm2"
// and returns the function that maps the unlocked volume.
func tpm2ActivateFlags(fs *flag.FlagSet) func(h *luks2.Header, name, device string, vk *luks2.Secret) (string, error) {
	var o luks2.ActivateOptions
	fs.BoolVar(&o.ReadOnly, "readonly", false, "map read-only")
	fs.BoolVar(&o.AllowDiscards, "allow-discards", false, "pass discards through")
	return func(h *luks2.Header, name, device string, vk *luks2.Secret) (string, error) {
		return h.Activate(name, device, vk, o)
	}
}
