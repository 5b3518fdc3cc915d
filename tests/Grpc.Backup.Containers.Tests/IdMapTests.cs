namespace Grpc.Backup.Containers.Tests;

public sealed class IdMapTests
{
    [Fact]
    public void Parses_several_ranges_and_maps_both_ways()
    {
        IdMap map = IdMap.Parse("""
            # the usual map, with uid/gid 1000 passed through to the host's 1005
            u 0 100000 1000
            g 0 100000 1000
            lxc.idmap: u 1000 1005 1
            lxc.idmap = g 1000 1005 1
            u 1001 101001 64535
            g 1001 101001 64535
            """);

        Assert.Equal(6, map.Ranges.Count);
        Assert.False(map.IsPrivileged);
        Assert.Equal(100000u, map.RootHostUid);
        Assert.Equal(100000u, map.RootHostGid);
        Assert.Equal(100033u, map.MapToHost(IdKind.User, 33));
        Assert.Equal(1005u, map.MapToHost(IdKind.User, 1000));
        Assert.Equal(101001u, map.MapToHost(IdKind.Group, 1001));
        Assert.Equal(165535u, map.MapToHost(IdKind.User, 65535));
        Assert.Equal(1000u, map.MapToContainer(IdKind.User, 1005));
        Assert.Equal(0u, map.MapToContainer(IdKind.Group, 100000));
        Assert.False(map.TryMapToHost(IdKind.User, 65536, out _));
        Assert.False(map.TryMapToContainer(IdKind.User, 1004, out _));
        ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => map.MapToHost(IdKind.User, 70000));
        Assert.Contains("uid 70000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void No_map_or_root_mapped_to_host_root_is_privileged()
    {
        Assert.True(IdMap.Parse("").IsPrivileged);
        Assert.Same(IdMap.Privileged, IdMap.Parse("# nothing\n\n"));
        Assert.True(IdMap.Privileged.TryMapToHost(IdKind.User, 42, out uint same) && same == 42);
        Assert.True(IdMap.Parse("u 0 0 65536\ng 0 0 65536").IsPrivileged);
        Assert.True(IdMap.Parse("u 0 100000 65536\ng 0 0 65536").IsPrivileged);
        Assert.False(IdMap.CreateDefault().IsPrivileged);
    }

    [Theory]
    [InlineData("x 0 100000 65536\ng 0 100000 65536", "line 1", "kind must be 'u' or 'g'")]
    [InlineData("u 0 100000\ng 0 100000 65536", "line 1", "got 3 fields")]
    [InlineData("u 0 100000 65536\ng 0 -1 65536", "line 2", "host id '-1'")]
    [InlineData("u 0 100000 +5\ng 0 100000 65536", "line 1", "count '+5'")]
    [InlineData("u 0 100000 65536 7\ng 0 100000 65536", "line 1", "got 5 fields")]
    [InlineData("u 0 4294967296 1\ng 0 100000 65536", "line 1", "not an unsigned 32-bit")]
    [InlineData("u 0 100000 0\ng 0 100000 65536", "u 0 100000 0", "count must be at least 1")]
    [InlineData("u 0 4294967290 100\ng 0 100000 65536", "u 0 4294967290 100", "runs past")]
    [InlineData("u 0 100000 65536\nu 1000 300000 10\ng 0 100000 65536", "u 1000 300000 10", "overlap on the container side")]
    [InlineData("u 0 100000 65536\nu 70000 100500 10\ng 0 100000 65536", "u 70000 100500 10", "overlap on the host side")]
    [InlineData("u 0 100000 65536", "group (g)", "both are needed")]
    [InlineData("u 1 100001 65535\ng 0 100000 65536", "uid 0", "root")]
    public void Rejects_malformed_maps_with_a_clear_message(string text, string names, string reason)
    {
        FormatException e = Assert.Throws<FormatException>(() => IdMap.Parse(text));
        Assert.Contains(names, e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Renders_the_kernel_map_per_kind()
    {
        IdMap map = IdMap.Parse("u 0 100000 1000\nu 1000 1005 1\ng 0 100000 65536");
        Assert.Equal("0 100000 1000\n1000 1005 1\n", map.ToProcMapText(IdKind.User));
        Assert.Equal("0 100000 65536\n", map.ToProcMapText(IdKind.Group));
    }
}
