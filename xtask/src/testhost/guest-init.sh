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
warnings)
    # Kernel messages of level warning or worse (the console, quiet, shows
    # only errors).
    dmesg -r | grep '^<[0-4]>' | sed 's/^/testhost-guest: warning /'
    echo "testhost-guest: warnings end" ;;
esac
while :; do sleep 3600; done
