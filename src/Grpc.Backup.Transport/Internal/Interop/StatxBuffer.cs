using System.Runtime.InteropServices;

namespace Grpc.Backup.Transport.Internal.Interop;

/// <summary>
/// struct statx (linux/stat.h), 256 bytes on every architecture. Only the fields this
/// library reads are named; the rest is padding the kernel fills in.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 256)]
internal struct StatxBuffer
{
    [FieldOffset(20)] public uint Uid;
    [FieldOffset(28)] public ushort Mode;
    [FieldOffset(32)] public ulong Inode;
    [FieldOffset(40)] public ulong Size;
    [FieldOffset(136)] public uint DeviceMajor;
    [FieldOffset(140)] public uint DeviceMinor;

    public const ushort FileTypeMask = 0xF000;
    public const ushort Fifo = 0x1000;
    public const ushort CharacterDevice = 0x2000;
    public const ushort Directory = 0x4000;
    public const ushort BlockDevice = 0x6000;
    public const ushort Regular = 0x8000;
    public const ushort SymbolicLink = 0xA000;
    public const ushort Socket = 0xC000;

    public readonly ushort FileType => (ushort)(Mode & FileTypeMask);
}
