package main

import (
	"bufio"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process the harness started; it is stopped by its PID.
type proc struct {
	name string
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
	err  error
	log  string
}

// procs tracks every process the harness started, so all of them are
// stopped on every way out (normal end, error, SIGINT/SIGTERM).
type procSet struct {
	mu    sync.Mutex
	procs []*proc
}

var running procSet

// startProc starts argv (pinned to cpus with taskset when cpus is set),
// logging to logPath. stdout, if non-nil, receives the process's stdout
// instead of the log.
func startProc(name, cpus string, env []string, logPath string, stdout *os.File, argv ...string) (*proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = lf
	cmd.Stdout = lf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	// If the harness dies without cleaning up, the kernel stops the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{}), log: logPath}
	running.mu.Lock()
	running.procs = append(running.procs, p)
	running.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the PID, and SIGKILL after a grace period.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	syscall.Kill(p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.done
	}
}

// stopAll stops every process started so far, newest first.
func stopAll() {
	running.mu.Lock()
	ps := running.procs
	running.procs = nil
	running.mu.Unlock()
	var wg sync.WaitGroup
	for i := len(ps) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(p *proc) { defer wg.Done(); p.stop() }(ps[i])
	}
	wg.Wait()
}

// logTail is the end of a process's log, for error messages.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	s := strings.TrimSpace(string(b))
	if len(s) > 1500 {
		s = "…" + s[len(s)-1500:]
	}
	return s
}

// waitListening waits until addr accepts TCP connections or p exits.
func waitListening(p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.logTail())
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s: nothing listens on %s after %s\n%s", p.name, addr, timeout, p.logTail())
}

// freePorts asks the kernel for n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// --- /proc -----------------------------------------------------------------

const clkTck = 100 // USER_HZ on Linux

// procStat is fields of /proc/PID/stat.
type procStat struct {
	ppid      int
	cpuTicks  int64 // utime + stime
	startTime int64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("bad stat for %d", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("short stat for %d", pid)
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	start, _ := strconv.ParseInt(f[19], 10, 64)
	return procStat{ppid: ppid, cpuTicks: ut + st, startTime: start}, nil
}

// children lists the PIDs whose parent is pid (nginx's workers).
func children(pid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		c, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, err := readStat(c); err == nil && st.ppid == pid {
			out = append(out, c)
		}
	}
	return out
}

// rssKiB is VmRSS of one process.
func rssKiB(pid int) int64 { return statusKiB(pid, "VmRSS")[0] }

// statusKiB reads fields (in kB) of /proc/PID/status: VmRSS, RssAnon,
// RssFile; 0 for a field not there.
func statusKiB(pid int, fields ...string) []int64 {
	out := make([]int64, len(fields))
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for i, want := range fields {
			if name == want {
				out[i], _ = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			}
		}
	}
	return out
}

// pidGroup is a target's processes: the PID we started plus, for nginx,
// its workers.
type pidGroup struct {
	main    int
	workers bool // include children
}

func (g pidGroup) pids() []int {
	ps := []int{g.main}
	if g.workers {
		ps = append(ps, children(g.main)...)
	}
	return ps
}

// cpuTicks is the CPU time (user + system, in clock ticks) of the group.
func (g pidGroup) cpuTicks() int64 {
	var t int64
	for _, p := range g.pids() {
		if st, err := readStat(p); err == nil {
			t += st.cpuTicks
		}
	}
	return t
}

// rssMiB is the resident memory of the group.
func (g pidGroup) rssMiB() float64 {
	var k int64
	for _, p := range g.pids() {
		k += rssKiB(p)
	}
	return float64(k) / 1024
}

// rssSampler polls the RSS of some groups until stopped and keeps the
// largest value seen per group.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	max  map[string]float64
}

func sampleRSS(groups map[string]pidGroup, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{}), max: map[string]float64{}}
	// nginx's workers are looked up once, not on every sample.
	fixed := map[string][]int{}
	for name, g := range groups {
		fixed[name] = g.pids()
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			for name, ps := range fixed {
				var k int64
				for _, p := range ps {
					k += rssKiB(p)
				}
				if v := float64(k) / 1024; v > s.max[name] {
					s.max[name] = v
				}
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) finish() map[string]float64 {
	close(s.stop)
	<-s.done
	return s.max
}

// timeWait counts TIME_WAIT sockets with port on either end.
func timeWait(port int) int {
	out, err := exec.Command("ss", "-Htan", "state", "time-wait",
		fmt.Sprintf("( sport = :%d or dport = :%d )", port, port)).Output()
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

// cpuTimes are the busy and total clock ticks of each CPU (/proc/stat).
type cpuTimes struct {
	busy, total []float64
	raw         [][]float64
}

func readCPUs() cpuTimes {
	var c cpuTimes
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var total, idle float64
		for i, x := range f[1:] {
			if i >= 8 { // guest time is already in user
				break
			}
			v, _ := strconv.ParseFloat(x, 64)
			total += v
			// Not busy: idle and iowait; nor counted: irq and softirq,
			// which are mostly the loopback traffic of the run itself.
			if i == 3 || i == 4 || i == 5 || i == 6 {
				idle += v
			}
		}
		c.busy = append(c.busy, total-idle)
		c.total = append(c.total, total)
		var raw []float64
		for _, x := range f[1:] {
			v, _ := strconv.ParseFloat(x, 64)
			raw = append(raw, v)
		}
		c.raw = append(c.raw, raw)
	}
	return c
}

// saturation is the share of CPU cpu's time since before that was not
// idle, interrupts included: how close the core came to being the limit.
func (c cpuTimes) saturation(before cpuTimes, cpu int) float64 {
	if cpu >= len(c.raw) || len(c.raw) != len(before.raw) || len(c.raw[cpu]) < 5 {
		return math.NaN()
	}
	var total float64
	for j := 0; j < 8 && j < len(c.raw[cpu]); j++ {
		total += c.raw[cpu][j] - before.raw[cpu][j]
	}
	idle := c.raw[cpu][3] - before.raw[cpu][3] + c.raw[cpu][4] - before.raw[cpu][4]
	if total <= 0 {
		return math.NaN()
	}
	return (total - idle) / total
}

// foreignShare is the share of the given CPUs' time (all CPUs if nil)
// since before that was busy with something other than ours ticks.
func (c cpuTimes) foreignShare(before cpuTimes, cpus []int, ours float64) float64 {
	if len(c.busy) == 0 || len(c.busy) != len(before.busy) {
		return 0
	}
	if cpus == nil {
		for i := range c.busy {
			cpus = append(cpus, i)
		}
	}
	var busy, total float64
	for _, i := range cpus {
		if i < len(c.busy) {
			busy += c.busy[i] - before.busy[i]
			total += c.total[i] - before.total[i]
		}
	}
	if total <= 0 {
		return 0
	}
	if os.Getenv("GATEBENCH_DEBUG") != "" {
		for _, i := range cpus {
			var d []float64
			for j := range c.raw[i] {
				d = append(d, c.raw[i][j]-before.raw[i][j])
			}
			fmt.Fprintf(os.Stderr, "debug cpu%d deltas (user nice system idle iowait irq softirq steal): %v ours %.0f\n", i, d, ours)
		}
	}
	return math.Max(0, (busy-ours)/total)
}
