package vmtest

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// GuestTag is the build tag of guest-side test files.
const GuestTag = "vmguest"

// runnerPkg is the import path of the guest /init.
const runnerPkg = "initos/internal/vmtest/runner"

// goTool returns the go command of the toolchain running the tests.
func goTool() (string, error) {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("find go tool: %w", err)
	}
	return p, nil
}

// goBuild runs the go tool with args in dir (static, no cgo, linux/goarch)
// and returns the bytes of the file it writes with -o.
func goBuild(dir, goarch string, args ...string) ([]byte, error) {
	gobin, err := goTool()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "vmtest-build")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")
	args = append(args[:1:1], append([]string{"-o", out, "-ldflags=-s -w"}, args[1:]...)...)
	cmd := exec.Command(gobin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return os.ReadFile(out)
}

// runnerBinaries caches the guest /init by GOARCH.
var runnerBinaries sync.Map // goarch -> func() ([]byte, error)

// runnerBinary returns the guest /init for goarch, built once per process.
func runnerBinary(goarch string) ([]byte, error) {
	f, _ := runnerBinaries.LoadOrStore(goarch, sync.OnceValues(func() ([]byte, error) {
		return goBuild(".", goarch, "build", runnerPkg)
	}))
	return f.(func() ([]byte, error))()
}

// testBinaries caches the guest test binaries by package directory and
// GOARCH.
var testBinaries sync.Map // absolute dir + "\x00" + goarch -> func() ([]byte, error)

// testBinary returns the guest test binary of the package in dir for
// goarch, built once per process with the vmguest tag.
func testBinary(dir, goarch string) ([]byte, error) {
	f, _ := testBinaries.LoadOrStore(dir+"\x00"+goarch, sync.OnceValues(func() ([]byte, error) {
		return goBuild(dir, goarch, "test", "-c", "-tags", GuestTag, ".")
	}))
	return f.(func() ([]byte, error))()
}

// guestTests returns the names of the Test functions declared in the
// _test.go files of dir that are built only with the vmguest tag.
func guestTests(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	var names []string
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("list guest tests: %w", err)
		}
		if !guestOnly(f.Comments, f.Package) {
			continue
		}
		names = append(names, testFuncs(f)...)
	}
	slices.Sort(names)
	return names, nil
}

// runRegexp returns the -test.run pattern matching exactly names.
func runRegexp(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(q, "|") + ")$"
}

// guestOnly reports whether a file's //go:build line (before the package
// clause) selects it with the vmguest tag and not without.
func guestOnly(groups []*ast.CommentGroup, pkg token.Pos) bool {
	for _, g := range groups {
		if g.Pos() >= pkg {
			break
		}
		for _, c := range g.List {
			expr, err := constraint.Parse(c.Text)
			if err == nil && constraint.IsGoBuild(c.Text) {
				return satisfied(expr, true) && !satisfied(expr, false)
			}
		}
	}
	return false
}

// testFuncs returns the names of f's top-level test functions.
func testFuncs(f *ast.File) []string {
	var names []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || !isTestName(fn.Name.Name) {
			continue
		}
		names = append(names, fn.Name.Name)
	}
	return names
}

// isTestName follows `go test`: "Test" then nothing or a non-lowercase rune.
func isTestName(name string) bool {
	rest, ok := strings.CutPrefix(name, "Test")
	if !ok {
		return false
	}
	return rest == "" || !unicode.IsLower([]rune(rest)[0])
}

// satisfied reports whether a //go:build expression holds for a linux/amd64
// build with or without the vmguest tag.
func satisfied(expr constraint.Expr, guest bool) bool {
	return expr.Eval(func(tag string) bool {
		return tag == "linux" || tag == "amd64" || tag == "unix" || (guest && tag == GuestTag)
	})
}
