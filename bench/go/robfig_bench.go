// Peer harness: the same measurements as bench/cron_bench.c and
// bench/sched_bench.c, taken on robfig/cron v3 (the library the seed's Go
// implementation is built on). Prints "key value" lines that bench/run.sh
// puts next to Cronix's.
//
//	robfig_bench exprs FILE          parse and next-fire ns/op over FILE's
//	                                 expressions (one per line)
//	robfig_bench timer N SECONDS     N entries "S * * * * *" (random S), no-op
//	                                 jobs, for SECONDS: fires/s, CPU per fire,
//	                                 memory per entry, lateness p50/p99
package main

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"
)

var parser = cron.NewParser(cron.Second | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func readExprs(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		out = append(out, line)
	}
	return out
}

func benchExprs(path string) {
	exprs := readExprs(path)
	// Parse: loop until at least 1 s has passed.
	iters := 0
	start := time.Now()
	for time.Since(start) < time.Second {
		for _, e := range exprs {
			if _, err := parser.Parse(e); err != nil {
				fmt.Fprintf(os.Stderr, "robfig rejects %q: %v\n", e, err)
				os.Exit(1)
			}
			iters++
		}
	}
	fmt.Printf("parse_ns_per_op %.1f\n",
		float64(time.Since(start).Nanoseconds())/float64(iters))

	// Next: each schedule walks forward from 2026-01-01 UTC.
	scheds := make([]cron.Schedule, len(exprs))
	for i, e := range exprs {
		scheds[i], _ = parser.Parse(e)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	iters = 0
	var sink int64
	start = time.Now()
	for time.Since(start) < 2*time.Second {
		for _, s := range scheds {
			t := base
			for k := 0; k < 100; k++ {
				t = s.Next(t)
				iters++
			}
			sink += t.Unix()
		}
	}
	fmt.Printf("next_ns_per_op %.1f\n",
		float64(time.Since(start).Nanoseconds())/float64(iters))
	if sink == 42 {
		fmt.Println()
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) +
		float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func benchTimer(n int, seconds int) {
	rng := rand.New(rand.NewSource(1))
	var mu sync.Mutex
	lateness := make([]float64, 0, 1<<20)
	fires := 0
	recording := false

	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	c := cron.New(cron.WithParser(parser), cron.WithLocation(time.UTC))
	for i := 0; i < n; i++ {
		sec := rng.Intn(60)
		c.AddFunc(strconv.Itoa(sec)+" * * * * *", func() {
			now := time.Now()
			// The scheduled instant is the latest one <= now whose
			// second is sec.
			sched := now.Truncate(time.Second)
			for sched.Second() != sec {
				sched = sched.Add(-time.Second)
			}
			mu.Lock()
			if recording {
				fires++
				lateness = append(lateness,
					float64(now.Sub(sched).Microseconds())/1000.0)
			}
			mu.Unlock()
		})
	}
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	fmt.Printf("mem_bytes_per_entry %.1f\n",
		float64(m1.HeapAlloc-m0.HeapAlloc)/float64(n))

	c.Start()
	time.Sleep(2 * time.Second) // warm up
	mu.Lock()
	recording = true
	mu.Unlock()
	cpu0 := cpuSeconds()
	t0 := time.Now()
	for i := 0; i < seconds; i++ {
		time.Sleep(time.Second)
		fmt.Fprintf(os.Stderr, "  robfig timer n=%d: %d/%d s\n", n, i+1,
			seconds)
	}
	mu.Lock()
	recording = false
	elapsed := time.Since(t0).Seconds()
	cpu := cpuSeconds() - cpu0
	f := fires
	lat := append([]float64(nil), lateness...)
	mu.Unlock()
	c.Stop()

	sort.Float64s(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return -1
		}
		return lat[int(p*float64(len(lat)-1))]
	}
	fmt.Printf("expected_fires_per_s %.1f\n", float64(n)/60.0)
	fmt.Printf("fires_per_s %.1f\n", float64(f)/elapsed)
	if f > 0 {
		fmt.Printf("cpu_us_per_fire %.2f\n", cpu*1e6/float64(f))
	}
	fmt.Printf("cpu_percent %.1f\n", cpu*100/elapsed)
	fmt.Printf("lateness_p50_ms %.3f\n", pct(0.50))
	fmt.Printf("lateness_p99_ms %.3f\n", pct(0.99))
}

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "exprs" {
		benchExprs(os.Args[2])
		return
	}
	if len(os.Args) >= 4 && os.Args[1] == "timer" {
		n, _ := strconv.Atoi(os.Args[2])
		s, _ := strconv.Atoi(os.Args[3])
		benchTimer(n, s)
		return
	}
	fmt.Fprintln(os.Stderr, "usage: robfig_bench exprs FILE | timer N SECONDS")
	os.Exit(2)
}
