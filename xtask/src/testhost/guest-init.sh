#!/bin/sh
# The guest's init: say it is up, then play the scenario named by
# `scenario=NAME` on the kernel command line (the kernel hands such words
# to init as environment variables).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in $(cat /modules/order); do
    insmod "/modules/$module.ko" || echo "testhost-guest: cannot load $module"
done
echo "testhost-guest: ready scenario=${scenario:-idle}" \
    "cpus=$(grep -c ^processor /proc/cpuinfo)" \
    "uptime=$(cut -d' ' -f1 /proc/uptime) time=$(date +%s)" \
    "rtc=$(cat /sys/class/rtc/rtc0/since_epoch 2>/dev/null || echo none)" \
    "cmdline=$(cat /proc/cmdline)"
case "$scenario" in
poweroff) poweroff -f ;;
reboot) reboot -f ;;
acpid)
    # busybox acpid runs /etc/acpi/PWRF/00000080 on the power button.
    acpid && echo "testhost-guest: acpid started" ;;
ticks)
    i=0
    while :; do
        echo "testhost-guest: tick $i"
        i=$((i + 1))
        usleep 100000
    done ;;
blk)
    # 512 KiB of text written at 1 MiB of the first disk with O_DIRECT,
    # synced, and read back past the page cache.
    mkdir -p /tmp
    seq 1 100000 >/tmp/seq
    dd if=/tmp/seq of=/tmp/pattern bs=64k count=8 2>/dev/null
    dd if=/tmp/pattern of=/dev/vda bs=64k seek=16 oflag=direct 2>/dev/null
    sync
    # The size is taken before the line that lets the tests resize the disk.
    size=$(blockdev --getsize64 /dev/vda)
    echo "testhost-guest: blk size=$size" \
        "wrote=$(md5sum </tmp/pattern | cut -d' ' -f1)" \
        "read=$(dd if=/dev/vda bs=64k skip=16 count=8 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
    # Then the tests resize the disk; the kernel learns of it from the
    # device's configuration-change interrupt.
    while [ "$(blockdev --getsize64 /dev/vda)" = "$size" ]; do usleep 100000; done
    echo "testhost-guest: blk resized size=$(blockdev --getsize64 /dev/vda)"
    poweroff -f ;;
dd-bench)
    # cargo xtask bench blk: for each job OP:BLOCK:COUNT of `dd=JOB,...`,
    # dd with O_DIRECT on the first disk, timed by the guest's clock; the
    # host reads the VMM's thread times as the "begin" line passes (the
    # pause lets it) and as the "end" line does.
    for job in $(echo "$dd" | tr , ' '); do
        set -- $(echo "$job" | tr : ' ')
        echo "testhost-guest: dd begin $job"
        usleep 100000
        read start _ </proc/uptime
        if [ "$1" = read ]; then
            dd if=/dev/vda of=/dev/null bs="$2" count="$3" iflag=direct 2>/dev/null
        else
            dd if=/dev/zero of=/dev/vda bs="$2" count="$3" oflag=direct 2>/dev/null
        fi
        status=$?
        read end _ </proc/uptime
        echo "testhost-guest: dd end $job status=$status start=$start end=$end"
    done
    poweroff -f ;;
nc-bench)
    # cargo xtask bench net: a TCP stream of $mib MiB to the test host
    # (which listens at 169.254.10.1), then one from it, each timed by the
    # guest's clock: sending until the receiver has closed, receiving from
    # the connection on.
    ip link set eth0 up
    ip addr add 169.254.10.2/24 dev eth0
    until ping -c 1 -W 1 169.254.10.1 >/dev/null; do :; done
    echo "testhost-guest: nc begin tx"
    read start _ </proc/uptime
    dd if=/dev/zero bs=64k count=$((mib * 16)) 2>/dev/null | nc 169.254.10.1 5000
    status=$?
    read end _ </proc/uptime
    echo "testhost-guest: nc end tx status=$status start=$start end=$end"
    nc -l -p 5001 -e sh -c 'read up _ </proc/uptime; echo $up >/tmp/start; cat >/dev/null' </dev/null &
    echo "testhost-guest: nc begin rx"
    wait $!
    status=$?
    read end _ </proc/uptime
    echo "testhost-guest: nc end rx status=$status start=$(cat /tmp/start) end=$end"
    poweroff -f ;;
rtc)
    # rtc_cmos's alarm interrupt (IRQ 8 from the ACPI node), then the
    # system time written to the clock as `hwclock --systohc` does.
    echo +2 >/sys/class/rtc/rtc0/wakealarm
    sleep 3
    irqs=$(awk '/rtc0/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) n += $i } END { print n + 0 }' /proc/interrupts)
    echo "testhost-guest: rtc name=$(cat /sys/class/rtc/rtc0/name) irqs=$irqs"
    date -u -s "2030-01-01 00:00:00" >/dev/null
    hwclock -w -u
    echo "testhost-guest: rtc set" ;;
watchdog)
    # busybox's watchdog daemon arms /dev/watchdog for 2 s and feeds it
    # every second; killed, it stops feeding without disarming.
    watchdog -T 2 -t 1 -F /dev/watchdog &
    pid=$!
    sleep 3
    echo "testhost-guest: watchdog starving"
    kill -9 $pid ;;
panic)
    # A second for the console to drain the ready line, which the panic's
    # messages would otherwise cut into.
    sleep 1
    echo c >/proc/sysrq-trigger ;;
balloon)
    # dd's buffer touches 256 MiB, which it frees on exit, so the host has
    # pages to take back; then the memory the kernel sees, twice a second.
    dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null
    while :; do
        echo "testhost-guest: meminfo $(awk '/^Mem(Total|Free):/ { sub(":", "", $1); printf "%s=%s ", $1, $2 }' /proc/meminfo)"
        usleep 500000
    done ;;
balloon-hog)
    # Once the balloon has inflated most of the way (free memory below
    # 150 MiB and steady for 2 s), ask for more than is left.
    free() { awk '/^MemFree/ { print $2 }' /proc/meminfo; }
    last=0
    while :; do
        now=$(free)
        change=$((now > last ? now - last : last - now))
        [ "$now" -lt 153600 ] && [ "$change" -lt 1024 ] && break
        last=$now
        sleep 2
    done
    echo "testhost-guest: hog start free_kb=$now"
    dd if=/dev/zero of=/dev/null bs=320M count=1 2>/dev/null
    echo "testhost-guest: hog status=$?" ;;
net)
    # The first NIC at 169.254.10.2/24; the test host is .1 across the tap.
    # Pings, then a TCP stream each way with busybox nc: the listener hands
    # the stream to a shell, whose end closes the connection, so the
    # sender's nc ends once all is through.  Then the carrier as it changes.
    ip link set eth0 up
    ip addr add 169.254.10.2/24 dev eth0
    ping -c 3 -W 10 169.254.10.1 >/tmp/ping
    echo "testhost-guest: net ping status=$? $(grep -o '[0-9]* packets received' /tmp/ping)"
    dd if=/dev/urandom of=/tmp/out bs=64k count=32 2>/dev/null
    echo "testhost-guest: net sending md5=$(md5sum </tmp/out | cut -d' ' -f1)"
    nc 169.254.10.1 5000 </tmp/out
    echo "testhost-guest: net sent status=$?"
    nc -l -p 5001 -e sh -c 'md5sum >/tmp/in' </dev/null &
    echo "testhost-guest: net listening"
    wait
    echo "testhost-guest: net received md5=$(cut -d' ' -f1 /tmp/in)"
    last=
    while :; do
        carrier=$(cat /sys/class/net/eth0/carrier)
        [ "$carrier" = "$last" ] || echo "testhost-guest: net carrier=$carrier"
        last=$carrier
        usleep 100000
    done ;;
warnings)
    # Kernel messages of level warning or worse (the console, quiet, shows
    # only errors).
    dmesg -r | grep '^<[0-4]>' | sed 's/^/testhost-guest: warning /'
    echo "testhost-guest: warnings end" ;;
esac
while :; do sleep 3600; done
