package tpm2

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// Default device nodes, tried in order when no device is named: the kernel
// resource manager first (it flushes our transient objects if we crash),
// then the raw device.
const (
	DefaultDevice  = "/dev/tpmrm0"
	FallbackDevice = "/dev/tpm0"
)

// Device names a TPM: a character device, or an swtpm listening on a Unix
// socket or a TCP port. The zero value means "the default device".
type Device struct {
	Path   string // character device, e.g. /dev/tpmrm0
	Socket string // swtpm:path=SOCK (raw TPM command framing)
	Host   string // swtpm:host=H,port=P (Microsoft simulator framing)
	Port   int
}

// String formats d in the syntax ParseDevice accepts.
func (d Device) String() string {
	switch {
	case d.Socket != "":
		return "swtpm:path=" + d.Socket
	case d.Host != "" || d.Port != 0:
		return fmt.Sprintf("swtpm:host=%s,port=%d", d.Host, d.Port)
	case d.Path != "":
		return d.Path
	}
	return "auto"
}

// ParseDevice parses the --tpm2-device syntax: "" or "auto" (the default
// device), a device PATH, "swtpm:path=SOCK" or "swtpm:host=H,port=P" (the
// libtss2 swtpm TCTI configuration systemd-cryptenroll accepts).
func ParseDevice(s string) (Device, error) {
	if s == "" || s == "auto" {
		return Device{}, nil
	}
	conf, ok := strings.CutPrefix(s, "swtpm:")
	if !ok {
		if strings.Contains(s, ":") {
			return Device{}, fmt.Errorf("parse TPM device %q: unknown scheme (want PATH, swtpm:path=SOCK or swtpm:host=H,port=P)", s)
		}
		return Device{Path: s}, nil
	}
	return parseSwtpm(s, conf)
}

func parseSwtpm(s, conf string) (Device, error) {
	var d Device
	for _, kv := range strings.Split(conf, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return Device{}, fmt.Errorf("parse TPM device %q: option %q is not key=value", s, kv)
		}
		switch k {
		case "path":
			d.Socket = v
		case "host":
			d.Host = v
		case "port":
			p, err := strconv.ParseUint(v, 10, 16)
			if err != nil || p == 0 {
				return Device{}, fmt.Errorf("parse TPM device %q: port %q is not in 1..65535", s, v)
			}
			d.Port = int(p)
		default:
			return Device{}, fmt.Errorf("parse TPM device %q: unknown option %q", s, k)
		}
	}
	switch {
	case d.Socket != "" && (d.Host != "" || d.Port != 0):
		return Device{}, fmt.Errorf("parse TPM device %q: path= excludes host= and port=", s)
	case d.Socket == "" && d.Port == 0:
		return Device{}, fmt.Errorf("parse TPM device %q: need path= or port=", s)
	case d.Socket == "" && d.Host == "":
		d.Host = "localhost"
	}
	return d, nil
}

// Open connects to the TPM d names. With the zero Device it opens
// DefaultDevice, falling back to FallbackDevice; when neither exists the
// error wraps ErrNoTPM. The caller closes the returned TPM.
func Open(d Device) (transport.TPMCloser, error) {
	switch {
	case d.Socket != "":
		c, err := net.Dial("unix", d.Socket)
		if err != nil {
			return nil, fmt.Errorf("open TPM %s: %w: %w", d, ErrNoTPM, err)
		}
		return newStream(c, framingRaw), nil
	case d.Port != 0:
		c, err := net.Dial("tcp", net.JoinHostPort(d.Host, strconv.Itoa(d.Port)))
		if err != nil {
			return nil, fmt.Errorf("open TPM %s: %w: %w", d, ErrNoTPM, err)
		}
		return newStream(c, framingMSSim), nil
	case d.Path != "":
		return openDevice(d.Path)
	}
	t, err := openDevice(DefaultDevice)
	if errors.Is(err, ErrNoTPM) {
		t, err = openDevice(FallbackDevice)
	}
	return t, err
}

func openDevice(path string) (transport.TPMCloser, error) {
	t, err := linuxtpm.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open TPM %s: %w: %w", path, ErrNoTPM, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open TPM %s: %w", path, err)
	}
	return t, nil
}
