#!/usr/bin/env python3
"""Minimal Bitchat-shaped GATT peripheral on one BlueZ adapter.

Registers the Bitchat service/characteristic (read, write,
write-without-response, notify) through GattManager1 and advertises the
service UUID through LEAdvertisingManager1. While anyone is subscribed it
notifies a fixed payload every --interval seconds; every write it receives is
printed as `WRITE <hex>` (and `WRITE-FROM <device> mtu=<n>` for diagnostics).
Used to smoke-test bitchat-client.py and to probe btvirt without yonder.
"""
import argparse
import os
import sys
import time

import dbus
import dbus.exceptions
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

BITCHAT_SVC = "f47b5e2d-4a9e-4c5a-9b3f-8e1d2c3a4b5c"
BITCHAT_CHR = "a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d"
BLUEZ = "org.bluez"
PROPS = "org.freedesktop.DBus.Properties"
OM = "org.freedesktop.DBus.ObjectManager"


def out(msg):
    print(msg, flush=True)


def log(msg):
    print(f"[{time.monotonic():9.3f}] peer: {msg}", file=sys.stderr, flush=True)


class InvalidArgs(dbus.exceptions.DBusException):
    _dbus_error_name = "org.freedesktop.DBus.Error.InvalidArgs"


class Application(dbus.service.Object):
    def __init__(self, bus, base):
        self.path = base
        self.children = []
        super().__init__(bus, base)

    @dbus.service.method(OM, out_signature="a{oa{sa{sv}}}")
    def GetManagedObjects(self):
        objs = {}
        for svc in self.children:
            objs[svc.get_path()] = svc.get_properties()
            for ch in svc.children:
                objs[ch.get_path()] = ch.get_properties()
        return objs


class Service(dbus.service.Object):
    def __init__(self, bus, path):
        self.path = path
        self.children = []
        super().__init__(bus, path)

    def get_path(self):
        return dbus.ObjectPath(self.path)

    def get_properties(self):
        return {"org.bluez.GattService1": {
            "UUID": BITCHAT_SVC, "Primary": True,
            "Characteristics": dbus.Array([c.get_path() for c in self.children], "o")}}

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        return self.get_properties()[iface]


class Characteristic(dbus.service.Object):
    IFACE = "org.bluez.GattCharacteristic1"

    def __init__(self, bus, path, service, payload, interval):
        self.path = path
        self.service = service
        self.payload = payload
        self.value = payload
        self.notifying = False
        self.timer = None
        self.interval = interval
        super().__init__(bus, path)

    def get_path(self):
        return dbus.ObjectPath(self.path)

    def get_properties(self):
        return {self.IFACE: {
            "Service": self.service.get_path(), "UUID": BITCHAT_CHR,
            "Flags": dbus.Array(["read", "write", "write-without-response", "notify"], "s")}}

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        if iface != self.IFACE:
            raise InvalidArgs()
        return self.get_properties()[iface]

    @dbus.service.signal(PROPS, signature="sa{sv}as")
    def PropertiesChanged(self, iface, changed, invalidated):
        pass

    @dbus.service.method(IFACE, in_signature="a{sv}", out_signature="ay")
    def ReadValue(self, options):
        log(f"read from {options.get('device')} mtu={options.get('mtu')}")
        return dbus.Array(self.value, "y")

    @dbus.service.method(IFACE, in_signature="aya{sv}")
    def WriteValue(self, value, options):
        data = bytes(value)
        out(f"WRITE {data.hex()}")
        out(f"WRITE-FROM {options.get('device')} mtu={options.get('mtu')} type={options.get('type')}")
        self.value = data

    @dbus.service.method(IFACE)
    def StartNotify(self):
        # BlueZ calls this once for the first subscriber, StopNotify after the last.
        out("SUBSCRIBED")
        if not self.notifying:
            self.notifying = True
            self.timer = GLib.timeout_add(int(self.interval * 1000), self.tick)

    @dbus.service.method(IFACE)
    def StopNotify(self):
        out("UNSUBSCRIBED")
        self.notifying = False

    def tick(self):
        if not self.notifying:
            self.timer = None
            return False
        # Emitting Value makes bluetoothd notify every subscribed device.
        self.PropertiesChanged(self.IFACE, {"Value": dbus.Array(self.payload, "y")}, [])
        return True


class Advertisement(dbus.service.Object):
    IFACE = "org.bluez.LEAdvertisement1"

    def __init__(self, bus, path, name):
        self.path = path
        self.name = name
        super().__init__(bus, path)

    def get_properties(self):
        props = {"Type": "peripheral", "ServiceUUIDs": dbus.Array([BITCHAT_SVC], "s")}
        if self.name:
            props["LocalName"] = self.name
        return {self.IFACE: props}

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        if iface != self.IFACE:
            raise InvalidArgs()
        return self.get_properties()[iface]

    @dbus.service.method(IFACE)
    def Release(self):
        log("advertisement released")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", default="hci0")
    ap.add_argument("--payload", default="01020304a5a5", help="hex payload to notify")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between notifications")
    ap.add_argument("--duration", type=float, default=0, help="exit after N seconds (0 = run until killed)")
    ap.add_argument("--name", default="", help="LocalName to advertise (Bitchat sends none)")
    ap.add_argument("--no-advertise", action="store_true", help="register GATT only")
    ap.add_argument("--readvertise", action="store_true",
                    help="re-register the advertisement after every incoming connection "
                         "(the controller ends the advertising set when a central connects)")
    args = ap.parse_args()
    payload = bytes.fromhex(args.payload)

    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    loop = GLib.MainLoop()
    apath = f"/org/bluez/{args.adapter}"
    base = f"/yonder/fakepeer{os.getpid()}"

    app = Application(bus, base)
    svc = Service(bus, base + "/service0")
    chrc = Characteristic(bus, base + "/service0/char0", svc, payload, args.interval)
    svc.children.append(chrc)
    app.children.append(svc)
    adv = Advertisement(bus, base + "/adv0", args.name)

    failed = []

    def err(what):
        def handler(e):
            out(f"ERROR {what}: {e}")
            failed.append(what)
            loop.quit()
        return handler

    obj = bus.get_object(BLUEZ, apath)
    gatt = dbus.Interface(obj, "org.bluez.GattManager1")
    gatt.RegisterApplication(base, {}, reply_handler=lambda: out(f"GATT registered on {args.adapter}"),
                             error_handler=err("RegisterApplication"))
    if not args.no_advertise:
        advm = dbus.Interface(obj, "org.bluez.LEAdvertisingManager1")
        advm.RegisterAdvertisement(base + "/adv0", {},
                                   reply_handler=lambda: out(f"ADVERTISING on {args.adapter}"),
                                   error_handler=err("RegisterAdvertisement"))

        def readvertise():
            try:
                advm.UnregisterAdvertisement(base + "/adv0")
            except dbus.DBusException as e:
                log(f"UnregisterAdvertisement: {e}")
            advm.RegisterAdvertisement(base + "/adv0", {},
                                       reply_handler=lambda: out(f"READVERTISING on {args.adapter}"),
                                       error_handler=lambda e: out(f"ERROR re-advertise: {e}"))
            return False

        def on_dev_props(iface, changed, invalidated, path=None):
            if (iface == "org.bluez.Device1" and changed.get("Connected")
                    and path.startswith(apath + "/")):
                out(f"CONNECTED {path}")
                if args.readvertise:
                    GLib.timeout_add(300, readvertise)

        def on_added(path, ifaces):
            # A central we never saw before shows up already connected.
            on_dev_props("org.bluez.Device1", ifaces.get("org.bluez.Device1", {}), [], path=path)

        bus.add_signal_receiver(on_dev_props, "PropertiesChanged", PROPS, BLUEZ, path_keyword="path")
        bus.add_signal_receiver(on_added, "InterfacesAdded", OM, BLUEZ)
    if args.duration:
        GLib.timeout_add(int(args.duration * 1000), loop.quit)
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
