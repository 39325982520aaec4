package boot_test

import (
	"context"
	"fmt"

	"initos/boot"
)

// The control plane plugs into a boot as its failure handler; initos-init
// runs the boot as process 1.
func Example() {
	b := boot.New(boot.Options{
		OnFailure: boot.FailureHandlerFunc(func(ctx context.Context, b *boot.Boot, f *boot.Failure) boot.Action {
			fmt.Println(f.Step, len(f.PCRs), f.Slot)
			return boot.PowerOff
		}),
	})
	fmt.Println(b.Steps())
	// Output: [mount config early-modules efivars measure esp trial modules coldplug]
}
