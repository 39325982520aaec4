package control

import (
	"bytes"
	"fmt"
	"strconv"
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
