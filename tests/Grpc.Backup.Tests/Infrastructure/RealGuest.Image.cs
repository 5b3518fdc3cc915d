using System.Globalization;

namespace Grpc.Backup.Tests.Infrastructure;

internal sealed partial class RealGuest
{
    private const string DiskSize = "64M";

    /// <summary>build/real-guest/build-image: the kernel and initramfs, cached under artifacts/ by package versions.</summary>
    private static async Task<string> BuildImageAsync()
    {
        var (exitCode, stdout, stderr) = await ChildProcess.RunAsync(Path.Combine(RepoPaths.Root, "build", "real-guest", "build-image"), [],
            timeout: TimeSpan.FromMinutes(5));
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"build-image failed ({exitCode}): {stderr}");
        }
        return stdout.Trim();
    }

    /// <summary>
    /// ext4 made on the host with <c>mkfs.ext4 -d</c> from a seed tree (so the guest starts with files it did not write),
    /// inode tables initialised at once (no lazy-init writes in the guest); disk 0 converted to qcow2, disk 1 raw.
    /// </summary>
    private static async Task CreateDisksAsync(string directory)
    {
        for (int n = 0; n < DiskCount; n++)
        {
            string seed = Path.Combine(directory, $"seed{n}");
            System.IO.Directory.CreateDirectory(Path.Combine(seed, "seed"));
            for (int f = 0; f < 8; f++)
            {
                await File.WriteAllTextAsync(Path.Combine(seed, "seed", $"s{f}"),
                    string.Concat(Enumerable.Range(0, 100 * (f + 1)).Select(l => string.Create(CultureInfo.InvariantCulture, $"disk {n} seed {f} line {l}\n"))));
            }
            string raw = Path.Combine(directory, $"disk{n}.raw");
            await ChildProcess.RunCheckedAsync("mkfs.ext4", ["-q", "-F", "-L", $"data{n}", "-E", "lazy_itable_init=0,lazy_journal_init=0", "-d", seed, raw, DiskSize]);
            System.IO.Directory.Delete(seed, recursive: true);
        }
        await ChildProcess.RunCheckedAsync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", Path.Combine(directory, "disk0.raw"), Path.Combine(directory, "disk0.qcow2")]);
        File.Delete(Path.Combine(directory, "disk0.raw"));
        File.WriteAllText(Path.Combine(directory, "inventory", "300.conf"), $"""
            type: vm
            name: real-300
            qmp: {directory}/qmp.sock
            agent: {directory}/agent.sock
            disk: drive-virtio0 file={directory}/disk0.qcow2 format=qcow2 node=fmt0 filter=top0 throttle-group=tg0 size={DiskSize}
            disk: drive-virtio1 file={directory}/disk1.raw format=raw node=fmt1 filter=top1 throttle-group=tg1 size={DiskSize}

            """);
    }

    private static string[] QemuArguments(string directory, string image, IEnumerable<string> disks) =>
    [
        "-machine", "pc", "-accel", "tcg", "-m", "256", "-nodefaults", "-no-user-config", "-display", "none",
        "-kernel", Path.Combine(image, "vmlinuz"), "-initrd", Path.Combine(image, "initrd.img"),
        "-append", "console=ttyS0 panic=-1 quiet",
        "-chardev", $"file,id=console,path={directory}/console.log", "-serial", "chardev:console",
        "-qmp", $"unix:{directory}/qmp.sock,server=on,wait=off",
        "-qmp", $"unix:{directory}/observe.sock,server=on,wait=off",
        "-device", "virtio-serial-pci,id=vser0",
        "-chardev", $"socket,id=agent,path={directory}/agent.sock,server=on,wait=off",
        "-device", "virtserialport,chardev=agent,name=org.qemu.guest_agent.0",
        "-chardev", $"file,id=manifest,path={directory}/manifest.log",
        "-device", "virtserialport,chardev=manifest,name=org.grpc-backup.manifest",
        .. disks,
    ];

    /// <summary>The guest's own data disks: disk0 a qcow2, disk1 a raw, each under a throttle filter.</summary>
    private static string[] OwnDisks(string directory) =>
    [
        "-object", "throttle-group,id=tg0",
        "-blockdev", $"driver=file,node-name=file0,filename={directory}/disk0.qcow2",
        "-blockdev", "driver=qcow2,node-name=fmt0,file=file0",
        "-blockdev", "driver=throttle,node-name=top0,throttle-group=tg0,file=fmt0",
        "-device", "virtio-blk-pci,drive=top0,id=vda",
        "-object", "throttle-group,id=tg1",
        "-blockdev", $"driver=file,node-name=file1,filename={directory}/disk1.raw",
        "-blockdev", "driver=raw,node-name=fmt1,file=file1",
        "-blockdev", "driver=throttle,node-name=top1,throttle-group=tg1,file=fmt1",
        "-device", "virtio-blk-pci,drive=top1,id=vdb",
    ];
}
