package control_test

import (
	"context"
	"fmt"

	"golang.org/x/crypto/ssh"

	"initos/control"
)

// The initrd's failure path: derive the host key in the TPM, bring the
// network up, serve until an unlock succeeds.
func Example() {
	var (
		tpm     interface{ Send([]byte) ([]byte, error) } // tpm2.Open(tpm2.Device{})
		backend control.Backend                           // initos-init's state
		keys    []string                                  // from the signed initrd config
	)
	if tpm == nil || backend == nil {
		fmt.Println("needs a TPM and the initrd's backend")
		return
	}
	ctx := context.Background()
	host, key, err := control.HostKeySigner(tpm)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer key.Close()
	fmt.Println("host key", ssh.FingerprintSHA256(host.PublicKey()))
	netw, err := control.BringUp(ctx, control.NetConfig{}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer netw.Close()
	srv, err := control.NewServer(control.Config{HostKey: host, AuthorizedKeys: keys}, backend)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(ctx)
	go func() { <-srv.Unlocked(); stop() }()
	srv.ListenAndServe(ctx)
	// Output: needs a TPM and the initrd's backend
}
