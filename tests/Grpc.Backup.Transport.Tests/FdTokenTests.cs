namespace Grpc.Backup.Transport.Tests;

public sealed class FdTokenTests
{
    [Fact]
    public void Random_tokens_are_sixteen_nonzero_bytes_and_distinct()
    {
        var tokens = Enumerable.Range(0, 1000).Select(_ => FdToken.NewRandom()).ToList();

        Assert.Equal(1000, tokens.Distinct().Count());
        Assert.All(tokens, t => Assert.Equal(16, t.ToByteArray().Length));
        Assert.All(tokens, t => Assert.Contains(t.ToByteArray(), b => b != 0));
    }

    [Fact]
    public void Bytes_round_trip_in_wire_order()
    {
        byte[] bytes = [.. Enumerable.Range(1, 16).Select(i => (byte)i)];
        FdToken token = FdToken.FromBytes(bytes);

        Assert.Equal(bytes, token.ToByteArray());
        Assert.Equal("0102030405060708090a0b0c0d0e0f10", token.ToString());
        var copy = new byte[20];
        token.CopyTo(copy);
        Assert.Equal(bytes, copy[..16]);
        Assert.Equal(token, FdToken.FromBytes(bytes));
        Assert.True(token == FdToken.FromBytes(bytes));
        Assert.Equal(token.GetHashCode(), FdToken.FromBytes(bytes).GetHashCode());
        bytes[15] = 0;
        Assert.True(token != FdToken.FromBytes(bytes));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(15)]
    [InlineData(17)]
    public void A_token_is_exactly_sixteen_bytes(int length)
    {
        byte[] bytes = [.. Enumerable.Repeat((byte)7, length)];
        Assert.Throws<ArgumentException>(() => FdToken.FromBytes(bytes));
    }

    [Fact]
    public void A_token_is_never_all_zero()
    {
        Assert.Throws<ArgumentException>(() => FdToken.FromBytes(new byte[16]));
        Assert.Throws<ArgumentException>(() => FdToken.NewRandom().CopyTo(new byte[15]));
    }
}
