package dm

import (
	"strconv"
	"strings"
)

// kmsgWarning is KERN_WARNING: CreateDevice reports messages at this level
// or more severe (lower), not the informational ones.
const kmsgWarning = 4

// kmsgMessage extracts the syslog level (0 emergency .. 7 debug) and the
// text of one /dev/kmsg record: "PRIO,SEQ,USEC,FLAGS[,...];MESSAGE\n"
// optionally followed by " KEY=VALUE\n" dictionary lines, where PRIO is
// facility<<3 | level (Documentation/ABI/testing/dev-kmsg).
func kmsgMessage(rec string) (level int, msg string, ok bool) {
	prefix, msg, ok := strings.Cut(rec, ";")
	if !ok || strings.ContainsAny(prefix, "\n") || strings.Count(prefix, ",") < 3 {
		return 0, "", false
	}
	prio, _, _ := strings.Cut(prefix, ",")
	p, err := strconv.Atoi(prio)
	if err != nil || p < 0 {
		return 0, "", false
	}
	msg, _, _ = strings.Cut(msg, "\n")
	return p & 7, msg, true
}
