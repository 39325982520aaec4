package control

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"

	"initos/control/eventlog"
)

// KmsgRecord is one record of the kernel log ring as /dev/kmsg returns it
// (Documentation/ABI/testing/dev-kmsg): "PRIO,SEQ,USEC,FLAGS[,...];TEXT"
// followed by optional " KEY=VALUE" continuation lines.
type KmsgRecord struct {
	Priority int    // syslog priority (level | facility<<3)
	Seq      uint64 // sequence number
	Usec     uint64 // microseconds since boot
	Text     string // message, with \xNN escapes as the kernel wrote them
}

// ParseKmsg parses one record read from /dev/kmsg.
func ParseKmsg(b []byte) (KmsgRecord, error) {
	head, text, ok := bytes.Cut(b, []byte{';'})
	if !ok {
		return KmsgRecord{}, fmt.Errorf("kmsg record %.40q: no ';' after the prefix", b)
	}
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		text = text[:i] // drop the KEY=VALUE dictionary lines
	}
	f := bytes.SplitN(head, []byte{','}, 5)
	if len(f) < 4 {
		return KmsgRecord{}, fmt.Errorf("kmsg record %.40q: prefix has %d fields, want at least 4", b, len(f))
	}
	prio, err := strconv.ParseUint(string(f[0]), 10, 31)
	if err != nil {
		return KmsgRecord{}, fmt.Errorf("kmsg record %.40q: priority: %w", b, err)
	}
	seq, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return KmsgRecord{}, fmt.Errorf("kmsg record %.40q: sequence: %w", b, err)
	}
	usec, err := strconv.ParseUint(string(f[2]), 10, 64)
	if err != nil {
		return KmsgRecord{}, fmt.Errorf("kmsg record %.40q: timestamp: %w", b, err)
	}
	return KmsgRecord{Priority: int(prio), Seq: seq, Usec: usec, Text: string(text)}, nil
}

// String formats r like dmesg: "[   12.345678] text".
func (r KmsgRecord) String() string {
	return fmt.Sprintf("[%5d.%06d] %s", r.Usec/1e6, r.Usec%1e6, r.Text)
}

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
