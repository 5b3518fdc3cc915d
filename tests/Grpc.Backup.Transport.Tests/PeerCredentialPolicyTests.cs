using Grpc.Backup.Transport.Tests.Support;

namespace Grpc.Backup.Transport.Tests;

public sealed class PeerCredentialPolicyTests
{
    [Fact]
    public void The_default_allows_root_and_the_current_user_only()
    {
        PeerCredentialPolicy policy = PeerCredentialPolicy.RootAndCurrentUser();

        Assert.Contains(0u, policy.AllowedUids);
        Assert.Contains(TestInterop.geteuid(), policy.AllowedUids);
        Assert.True(policy.IsAllowed(new UnixPeerCredentials(1, 0, 0)));
        Assert.True(policy.IsAllowed(new UnixPeerCredentials(1, TestInterop.geteuid(), 5)));
        Assert.False(policy.IsAllowed(new UnixPeerCredentials(1, 65534, 0)));
    }

    [Theory]
    [InlineData("0", new uint[] { 0 })]
    [InlineData("0,990", new uint[] { 0, 990 })]
    [InlineData(" 0 , 990 ", new uint[] { 0, 990 })]
    [InlineData("4294967294", new uint[] { 4294967294 })]
    public void Parse_reads_comma_separated_uids(string text, uint[] expected)
    {
        PeerCredentialPolicy policy = PeerCredentialPolicy.Parse(text);

        Assert.Equal(expected.Order(), policy.AllowedUids.Order());
        Assert.Equal(string.Join(',', expected.Order()), policy.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("0,")]
    [InlineData(",0")]
    [InlineData("0,,1")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData("0x10")]
    [InlineData("1 2")]
    [InlineData("root")]
    [InlineData("1.0")]
    [InlineData("4294967295")]
    [InlineData("4294967296")]
    [InlineData("٣")]
    public void Parse_rejects_anything_else_with_a_clear_message(string text)
    {
        FormatException failure = Assert.Throws<FormatException>(() => PeerCredentialPolicy.Parse(text));
        Assert.Contains("uid", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_policy_allows_someone()
    {
        Assert.Throws<ArgumentException>(() => new PeerCredentialPolicy([]));
        Assert.Throws<ArgumentException>(() => new PeerCredentialPolicy([uint.MaxValue]));
    }
}
