module cronix.local/bench

go 1.19

require github.com/robfig/cron/v3 v3.0.1

// Debian's golang-github-robfig-cron-dev; nothing is fetched from the network.
replace github.com/robfig/cron/v3 => /usr/share/gocode/src/github.com/robfig/cron
