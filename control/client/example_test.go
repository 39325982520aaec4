package client_test

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/crypto/ssh"

	"initos/control/client"
)

// Run status on two hosts whose keys were pinned at install.
func Example() {
	id, err := client.LoadIdentity(os.ExpandEnv("$HOME/.ssh/id_ed25519"))
	if err != nil {
		fmt.Println(err)
		return
	}
	o := client.Options{Identities: []ssh.Signer{id}, KnownHosts: client.DefaultKnownHosts()}
	for _, r := range o.RunAll(context.Background(), []string{"host1", "host2:2222"}, "status --json", nil, 0) {
		fmt.Println(r.Host, r.Exit, r.Error, string(r.Answer))
	}
}
