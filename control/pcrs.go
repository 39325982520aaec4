package control

import (
	"encoding/hex"
	"fmt"

	"initos/control/eventlog"
)

// EventLogPath is where Linux exposes the firmware's TPM event log.
const EventLogPath = "/sys/kernel/security/tpm0/binary_bios_measurements"

// banks maps the bank names of PCRReport to event log algorithms.
var banks = map[string]eventlog.Alg{"sha1": eventlog.SHA1, "sha256": eventlog.SHA256, "sha384": eventlog.SHA384, "sha512": eventlog.SHA512}

// EventLogEvents turns a crypto-agile event log (the bytes of
// EventLogPath) into PCRReport events of bank ("sha256"), and returns the
// PCR values the log replays to, for comparison with the live ones.
// Backends fill PCRReport.EventLog with it.
func EventLogEvents(log []byte, bank string) ([]Event, map[int]string, error) {
	alg, ok := banks[bank]
	if !ok {
		return nil, nil, fmt.Errorf("control: event log: unknown bank %q", bank)
	}
	evs, err := eventlog.Parse(log)
	if err != nil {
		return nil, nil, fmt.Errorf("control: %w", err)
	}
	out := make([]Event, 0, len(evs))
	for _, e := range evs {
		out = append(out, Event{PCR: int(e.PCR), Type: eventlog.TypeName(e.Type),
			Digest: hex.EncodeToString(e.Digests[alg]), Data: e.Describe()})
	}
	replay, err := eventlog.Replay(evs, alg)
	if err != nil {
		return out, nil, fmt.Errorf("control: %w", err)
	}
	pcrs := make(map[int]string, len(replay))
	for i, v := range replay {
		pcrs[int(i)] = hex.EncodeToString(v)
	}
	return out, pcrs, nil
}
