# Listens on the kernel's uevent netlink socket and prints, one per line,
# "ACTION SUBSYSTEM MODALIAS DRIVER" for every uevent of the device whose
# DEVPATH ends in argv[1], until that device's "remove" (exit 0) or a 30 s
# silence (exit 1). Touches argv[2] once it listens.
import socket
import sys

NETLINK_KOBJECT_UEVENT = 15
target = "/" + sys.argv[1]
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
sock.bind((0, 1))
sock.settimeout(30)
open(sys.argv[2], "w").close()
while True:
    try:
        data = sock.recv(65536)
    except socket.timeout:
        print("timeout")
        sys.exit(1)
    env = {}
    for field in data.split(b"\0")[1:]:
        key, _, value = field.decode(errors="replace").partition("=")
        env[key] = value
    if not env.get("DEVPATH", "").endswith(target):
        continue
    action = env.get("ACTION", "?")
    print(action, env.get("SUBSYSTEM", "-"), env.get("MODALIAS", "-"), env.get("DRIVER", "-"), flush=True)
    if action == "remove":
        sys.exit(0)
