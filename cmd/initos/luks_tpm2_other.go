//go:build !linux

package main

import (
	"errors"
	"flag"

	"initos/luks2"
)

func tpm2ActivateFlags(*flag.FlagSet) func(*luks2.Header, string, string, *luks2.Secret) (string, error) {
	return func(*luks2.Header, string, string, *luks2.Secret) (string, error) {
		return "", errors.New("mapping a dm-crypt device needs Linux")
	}
}
