#!/bin/sh
# The test host's init: load KVM, bring up the user-mode NIC, then serve the
# harness a shell.  Consoles: ttyS0 the kernel's; virtio consoles hvc0 the
# harness's shell, hvc1 and hvc2 the stdout and stderr of what it starts.
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t debugfs debug /sys/kernel/debug # KVM's exit counters
for module in $(cat /modules/order); do
    insmod "/modules/$module.ko" || echo "testhost: cannot load $module"
done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo "testhost: ready, $(ls /dev/kvm 2>&1), up $(cut -d' ' -f1 /proc/uptime) s"
if grep -q testhost=shell /proc/cmdline; then
    setsid cttyhack sh
    poweroff -f
fi
# Held open by init: a virtio console forgets its settings on its last close.
exec 3<>/dev/hvc0 4<>/dev/hvc1 5<>/dev/hvc2
for fd in 3 4 5; do
    stty raw -echo <&$fd
done
sh /dev/hvc0 >&3 2>&3 # read as a script: not interactive, no prompt
poweroff -f
