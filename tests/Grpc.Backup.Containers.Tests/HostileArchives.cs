using System.Text;

namespace Grpc.Backup.Containers.Tests;

/// <summary>
/// The corpus of crafted archives a hostile or broken provider could hand over, each with the options it is checked
/// under and a fragment of the message that must explain the refusal. <c>outside</c> is a host directory next to the
/// restore target that must stay untouched.
/// </summary>
internal static class HostileArchives
{
    public const string Marker = "grpc-backup-hostile";

    public static readonly IReadOnlyDictionary<string, HostileCase> Refused = new Dictionary<string, HostileCase>(StringComparer.Ordinal)
    {
        ["traversal"] = new(_ => Ok().File("../" + Marker, "x").End().ToArray(), "contains '..'"),
        ["deep-traversal"] = new(_ => Ok().File("a/../../../" + Marker, "x").End().ToArray(), "contains '..'"),
        ["absolute-path"] = new(_ => Ok().File("/etc/" + Marker, "x").End().ToArray(), "is an absolute path"),
        ["symlink-then-write"] = new(outside => Ok().Symlink("link", outside).File("link/pwned", "x").End().ToArray(), "symlink-then-write"),
        ["relative-symlink-then-write"] = new(_ => Ok().Symlink("up", "..").File("up/" + Marker, "x").End().ToArray(), "symlink-then-write"),
        ["hard-link-traversal"] = new(_ => Ok().HardLink("h", "../../etc/passwd").End().ToArray(), "contains '..'"),
        ["hard-link-absolute"] = new(_ => Ok().HardLink("h", "/etc/shadow").End().ToArray(), "is an absolute path"),
        ["hard-link-to-missing-member"] = new(_ => Ok().HardLink("h", "later").File("later", "x").End().ToArray(), "not an earlier member"),
        ["hard-link-through-symlink"] = new(_ => Ok().Symlink("s", "/etc").HardLink("h", "s/passwd").End().ToArray(), "symlink-then-write"),
        ["hard-link-to-directory"] = new(_ => Ok().Directory("d/").HardLink("h", "d").End().ToArray(), "only files can be linked"),
        ["device-node-refused"] = new(_ => Ok().Header("dev/sda", '4', 0).End().ToArray(), "block device node",
            new TarValidationOptions { DeviceNodes = DeviceNodePolicy.Refuse }),
        ["setuid-refused"] = new(_ => Ok().File("bin/x", "x", mode: "0004755").End().ToArray(), "setuid",
            new TarValidationOptions { SetIdBits = SetIdBitsPolicy.Refuse }),
        ["huge-declared-size"] = new(_ => Ok().Pax([("size", "2199023255552")]).Header("big", '0', 0).End().ToArray(), "more than the limit"),
        ["huge-total-size"] = new(_ => Ok().File("a", "12345678").File("b", "12345678").End().ToArray(), "brings the archive",
            new TarValidationOptions { MaxTotalSize = 10 }),
        ["too-many-members"] = new(_ => Ok().File("a", "1").File("b", "2").File("c", "3").End().ToArray(), "more than 2 members",
            new TarValidationOptions { MaxMembers = 2 }),
        ["metadata-bomb"] = new(_ => Ok().Header("./PaxHeaders/x", 'x', 100L << 20).ToArray(), "declares 104857600 bytes"),
        ["truncated-data"] = new(_ => Ok().Header("f", '0', 5000).Data(new byte[1024]).ToArray(), "is truncated"),
        ["truncated-header"] = new(_ => [.. Ok().ToArray(), .. new RawTar().File("f", "x").ToArray()[..100]], "corrupt or truncated"),
        ["no-end-marker"] = new(_ => Ok().ToArray(), "without an end-of-archive marker"),
        ["corrupt-gzip"] = new(_ => [0x1f, 0x8b, 0x08, 0x00, .. Encoding.ASCII.GetBytes(new string('g', 600))], "corrupt"),
        ["corrupt-zstd"] = new(_ => [0x28, 0xb5, 0x2f, 0xfd, .. Encoding.ASCII.GetBytes(new string('z', 600))], "corrupt"),
        ["zip-not-tar"] = new(_ => [.. "PK\u0003\u0004"u8, .. new byte[600]], "unrecognized archive format (zip"),
        ["unknown-format"] = new(_ => Encoding.ASCII.GetBytes(new string('A', 600)), "unrecognized archive format"),
        ["empty-file"] = new(_ => [], "empty (0 bytes)"),
        ["no-members"] = new(_ => new RawTar().End().ToArray(), "no members"),
        ["multi-volume-member"] = new(_ => Ok().Header("f", 'M', 0, gnu: true).End().ToArray(), "multi-volume"),
        ["multi-volume-pax-record"] = new(_ => Ok().Pax([("GNU.volume.offset", "100")]).File("f", "x").End().ToArray(), "multi-volume"),
        ["member-under-a-file"] = new(_ => Ok().File("f", "x").File("f/x", "x").End().ToArray(), "not a directory"),
        ["file-name-with-trailing-slash"] = new(_ => Ok().File("f/", "x").End().ToArray(), "ends in '/'"),
        ["bad-checksum"] = new(_ => Ok().Header("f", '0', 0, corruptChecksum: true).End().ToArray(), "bad checksum"),
        ["member-hidden-after-lone-zero-block"] = new(_ => Ok().Zeros(512).File(Marker, "hidden").End().ToArray(), "data after its end-of-archive marker"),
        ["directory-redefined-as-symlink"] = new(outside => Ok().Directory("d/").Symlink("d", outside).End().ToArray(), "redefines"),
        ["root-as-symlink"] = new(outside => new RawTar().Symlink(".", outside).File("x", "x").End().ToArray(), "archive root"),
        ["unknown-type"] = new(_ => Ok().Header("z", 'Z', 0).End().ToArray(), "member type 'Z'"),
        ["old-gnu-sparse"] = new(_ => Ok().Header("s", 'S', 0, gnu: true).End().ToArray(), "old GNU sparse"),
        ["owner-outside-the-map"] = new(_ => Ok().File("f", "x", uid: 70000).End().ToArray(), "does not cover"),
        ["pax-global-path"] = new(_ => Ok().Pax([("path", "../" + Marker)], type: 'g').File("f", "x").End().ToArray(), "global header"),
        ["sparse-name-traversal"] = new(_ => Ok()
            .Pax([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", "../" + Marker), ("GNU.sparse.realsize", "1")])
            .File("GNUSparseFile.0/x", "1\n0\n1\nx").End().ToArray(), "contains '..'"),
        ["gnu-long-name-and-pax"] = new(_ => Ok()
            .Header("././@LongLink", 'L', 2, gnu: true).Data("b\0"u8.ToArray()).Pax([("path", "c")]).File("a", "x").End().ToArray(), "ambiguous"),
    };

    /// <summary>A benign start: the root directory and a file, which tar may already have extracted when a refusal comes.</summary>
    public static RawTar Ok() => new RawTar().Directory("./").File("./ok.txt", "fine\n");
}
