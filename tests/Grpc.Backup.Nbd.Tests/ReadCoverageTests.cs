using Grpc.Backup.Nbd.Internal;

namespace Grpc.Backup.Nbd.Tests;

public sealed class ReadCoverageTests
{
    [Fact]
    public void In_order_and_out_of_order_chunks_add_up_exactly()
    {
        var coverage = default(ReadCoverage);
        coverage.Add(0, 100);
        coverage.Add(300, 100);
        coverage.Add(100, 50);
        coverage.Add(200, 100);
        coverage.Add(150, 50);

        Assert.Equal(400, coverage.Covered);
    }

    [Theory]
    [InlineData(50, 10)]
    [InlineData(250, 100)]
    [InlineData(0, 1000)]
    [InlineData(199, 2)]
    public void Overlaps_are_protocol_errors(long start, long length)
    {
        var coverage = default(ReadCoverage);
        coverage.Add(0, 100);
        coverage.Add(200, 100);

        Assert.Throws<NbdProtocolException>(() => coverage.Add(start, length));
    }

    [Fact]
    public void Excessive_fragmentation_is_refused()
    {
        var coverage = default(ReadCoverage);
        var error = Assert.Throws<NbdProtocolException>(() =>
        {
            for (var i = 10_000; i >= 0; i--)
            {
                coverage.Add(i * 2, 1);
            }
        });

        Assert.Contains("fragmented", error.Message, StringComparison.Ordinal);
    }
}
