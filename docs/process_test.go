package docs

// The binaries the pages tell people to run, built once, and the processes
// the tests start from them.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

// Bounds on waits. They only bound: nothing waits for them to pass.
const (
	buildTimeout = 5 * time.Minute  // go build of both binaries on a cold cache
	startTimeout = 30 * time.Second // a demo or tenant printing what it promises
	stopTimeout  = 10 * time.Second // a process exiting after SIGINT
	runTimeout   = 30 * time.Second // one command of a page
)

// built holds the binaries, built on first use by binaries and removed by
// TestMain.
var built struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// binaries returns the directory holding the gateway and fakeentra
// binaries, as `go build ./cmd/gateway ./cmd/fakeentra` makes them.
func binaries(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "obo-gateway-docs-")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/gateway", "./cmd/fakeentra")
		cmd.Dir = root
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			built.err = err
			return
		}
		timer := time.AfterFunc(buildTimeout, func() { _ = cmd.Process.Kill() })
		defer timer.Stop()
		if err := cmd.Wait(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/gateway ./cmd/fakeentra: %w\n%s", err, out.Bytes())
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

// output collects what a process writes, and tells when it grows. Safe for
// concurrent use.
type output struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // a token after each write
}

func newOutput() *output { return &output{changed: make(chan struct{}, 1)} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.b.Write(p)
	o.mu.Unlock()
	select {
	case o.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// child is a process a test started. It is stopped when the test ends.
type child struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *output
	done           chan struct{} // closed once it has exited
	err            error         // how it exited, once done
}

// start starts bin with args in the repository's root, with env added to
// the test's environment, and TMPDIR a directory of the test's (so that
// what it leaves behind when killed goes with the test).
func start(t *testing.T, env []string, bin string, args ...string) *child {
	t.Helper()
	c := &child{
		name:   filepath.Base(bin) + fmt.Sprint(args),
		cmd:    exec.Command(bin, args...),
		stdout: newOutput(),
		stderr: newOutput(),
		done:   make(chan struct{}),
	}
	c.cmd.Dir = root
	c.cmd.Env = append(append(os.Environ(), "TMPDIR="+t.TempDir()), env...)
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", c.name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { _ = c.stop() })
	return c
}

// waitFor waits until found matches what the process has printed on
// stdout, and returns what it found. It fails the test, quoting the
// process's output, when the process exits first or timeout passes.
func (c *child) waitFor(t *testing.T, what string, timeout time.Duration, found func(stdout string) ([]string, bool)) []string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if m, ok := found(c.stdout.String()); ok {
			return m
		}
		select {
		case <-c.stdout.changed:
		case <-c.done:
			if m, ok := found(c.stdout.String()); ok {
				return m
			}
			t.Fatalf("%s exited (%v) without printing %s\nstdout:\n%s\nstderr:\n%s", c.name, c.err, what, c.stdout, c.stderr)
		case <-deadline.C:
			t.Fatalf("%s printed no %s in %v\nstdout:\n%s\nstderr:\n%s", c.name, what, timeout, c.stdout, c.stderr)
		}
	}
}

// stop interrupts the process as Ctrl-C does, kills it if it has not
// exited after stopTimeout, and returns how it exited. It may be called
// again.
func (c *child) stop() error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
		return c.err
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not exit within %v of SIGINT: killed", c.name, stopTimeout)
	}
}

// helpFlagRE is a flag in the output of a Go program's -h.
var helpFlagRE = regexp.MustCompile(`(?m)^\s+-([A-Za-z0-9][\w-]*)`)

// help runs bin with args (ending in -h) and returns what it printed and
// its exit status.
func help(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return "", 0
}

// helpFlags returns the names of the flags bin's -h lists, and h and help.
func helpFlags(t *testing.T, bin string, args ...string) map[string]bool {
	t.Helper()
	out, _ := help(t, bin, append(args, "-h")...)
	flags := map[string]bool{"h": true, "help": true}
	for _, m := range helpFlagRE.FindAllStringSubmatch(out, -1) {
		flags[m[1]] = true
	}
	if len(flags) == 2 {
		t.Fatalf("%s %v -h lists no flags:\n%s", filepath.Base(bin), args, out)
	}
	return flags
}
