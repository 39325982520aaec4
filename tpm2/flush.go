package tpm2

import (
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// FlushAll flushes every loaded session and transient object. Without a
// resource manager (/dev/tpm0, a bare swtpm) a client that dies leaves them
// loaded and the TPM soon answers TPM_RC_SESSION_MEMORY or
// TPM_RC_OBJECT_MEMORY; the initrd calls this before using /dev/tpm0.
func FlushAll(t transport.TPM) error {
	t = withRetry(t)
	// Loaded sessions (HMAC and policy) are listed from 0x02000000; a
	// policy session's handle starts with 0x03. Then transient objects.
	for _, first := range []tpm2.TPMHandle{0x02000000, 0x80000000} {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(first), PropertyCount: 64}.Execute(t)
		if err != nil {
			return classify(fmt.Sprintf("list handles from 0x%08x", uint32(first)), err)
		}
		hs, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			return fmt.Errorf("list handles from 0x%08x: %w", uint32(first), err)
		}
		for _, h := range hs.Handle {
			if ht := h >> 24; ht != 0x02 && ht != 0x03 && ht != 0x80 {
				continue // the list runs on into the next handle type
			}
			if _, err := (tpm2.FlushContext{FlushHandle: h}).Execute(t); err != nil {
				return classify(fmt.Sprintf("flush 0x%08x", uint32(h)), err)
			}
		}
	}
	return nil
}
