namespace Grpc.Backup.Containers.Tests;

/// <summary>Archives GNU tar itself writes are accepted, member for member: the validator and GNU tar agree on what is in them.</summary>
public sealed class GnuTarArchiveTests
{
    [Theory]
    [InlineData("--format=pax", true)]
    [InlineData("--format=posix", true)]
    // Old GNU sparse members (type 'S') are refused, so the gnu format goes without --sparse; its long names use 'L' headers.
    [InlineData("--format=gnu", false)]
    public async Task The_validator_counts_the_members_GNU_tar_lists(string format, bool sparse)
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        SampleRootfs.Build(rootfs);
        string archive = dir.Combine("archive.tar");
        List<string> arguments = ["--create", "--file=" + archive, format, "--numeric-owner", "--xattrs", "--xattrs-include=*", "--directory=" + rootfs, "."];
        if (sparse)
        {
            arguments.Insert(1, "--sparse");
        }
        Host.Run("tar", [.. arguments]);
        int listed = Host.Run("tar", "--list", "--file=" + archive).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;

        await using FileStream stream = File.OpenRead(archive);
        // Made on the host, so its owners are host ids (100000...): no id map to check them against here.
        TarValidationReport report = await TarArchiveValidator.ValidateAsync(stream);

        Assert.Equal(listed, report.MemberCount);
        Assert.Equal(ArchiveCompression.None, report.Compression);
        Assert.Contains("./usr/bin/su", report.SetIdMembers);
        Assert.True(report.TotalSize >= SampleRootfs.SparseSize);
    }
}
