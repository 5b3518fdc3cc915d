namespace Grpc.Backup.Nbd.Tests;

public sealed class NbdUriTests
{
    [Theory]
    [InlineData("nbd+unix:///disk0?socket=/run/nbd.sock", "disk0", "/run/nbd.sock")]
    [InlineData("nbd+unix:///?socket=/tmp/s", "", "/tmp/s")]
    [InlineData("nbd+unix://?socket=/tmp/s", "", "/tmp/s")]
    [InlineData("nbd+unix:///a%20b%2Fc?socket=/tmp/with%20space.sock", "a b/c", "/tmp/with space.sock")]
    [InlineData("NBD+UNIX:///x?socket=rel.sock", "x", "rel.sock")]
    public void Parses_valid_uris(string text, string export, string socket)
    {
        var uri = NbdUri.Parse(text);

        Assert.Equal(export, uri.ExportName);
        Assert.Equal(socket, uri.SocketPath);
        Assert.Equal(uri.ExportName, NbdUri.Parse(uri.ToString()).ExportName);
        Assert.Equal(uri.SocketPath, NbdUri.Parse(uri.ToString()).SocketPath);
    }

    [Theory]
    [InlineData("nbd://host/disk0", "TCP is not supported")]
    [InlineData("nbds+unix:///disk0?socket=/s", "TLS is not supported")]
    [InlineData("http://x/y", "Unsupported URI scheme 'http'")]
    [InlineData("nbd+unix://host/disk0?socket=/s", "must not name a host")]
    [InlineData("nbd+unix:///disk0", "lacks the required socket=PATH")]
    [InlineData("nbd+unix:///disk0?socket=", "lacks the required socket=PATH")]
    [InlineData("nbd+unix:///disk0?socket=/a&socket=/b", "more than once")]
    [InlineData("nbd+unix:///disk0?socket=/a&tls=on", "unsupported query parameter 'tls'")]
    [InlineData("nbd+unix:///disk0?socket=/a#frag", "fragment")]
    [InlineData("nbd+unix:///disk%zz0?socket=/a", "malformed percent-encoded export name")]
    [InlineData("nbd+unix:///disk%ff?socket=/a", "malformed percent-encoded export name")]
    [InlineData("", "empty")]
    public void Rejects_invalid_uris_with_a_precise_message(string text, string expected)
    {
        var error = Assert.Throws<FormatException>(() => NbdUri.Parse(text));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.False(NbdUri.TryParse(text, out _));
    }
}
