using Grpc.Backup.Transport.Internal;
using Grpc.Backup.Transport.Tests.Support;

namespace Grpc.Backup.Transport.Tests;

/// <summary>
/// The receiving rules on their own, including the cases a real kernel cannot produce on
/// demand (a control message other than SCM_RIGHTS).
/// </summary>
public sealed class PacketClassifierTests
{
    private const int MsgTrunc = 0x20;
    private const int MsgCtrunc = 0x8;
    private static readonly ControlSummary _oneRights = new(1, 0);

    [Fact]
    public void A_well_formed_transfer_is_accepted_with_its_kinds()
    {
        FdToken token = FdToken.NewRandom();
        PacketVerdict verdict = PacketClassifier.Classify(
            RawPacket.Transfer(token, FdKind.NbdSocket, FdKind.Pipe), 0, 2, _oneRights);

        Assert.Equal(PacketVerdictKind.Transfer, verdict.Kind);
        Assert.Equal(token, verdict.Token);
        Assert.Equal([FdKind.NbdSocket, FdKind.Pipe], verdict.Kinds!);
    }

    [Fact]
    public void A_control_message_other_than_scm_rights_rejects_the_transfer()
    {
        FdToken token = FdToken.NewRandom();
        PacketVerdict verdict = PacketClassifier.Classify(RawPacket.Transfer(token, FdKind.File), 0, 1, new ControlSummary(1, 1));

        Assert.Equal(PacketVerdictKind.Rejected, verdict.Kind);
        Assert.Equal(token, verdict.Token);
        Assert.Contains("other than SCM_RIGHTS", verdict.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(MsgTrunc, "MSG_TRUNC")]
    [InlineData(MsgCtrunc, "MSG_CTRUNC")]
    public void Truncation_rejects_the_transfer(int flags, string reason)
    {
        FdToken token = FdToken.NewRandom();
        PacketVerdict verdict = PacketClassifier.Classify(RawPacket.Transfer(token, FdKind.File), flags, 1, _oneRights);

        Assert.Equal(PacketVerdictKind.Rejected, verdict.Kind);
        Assert.Contains(reason, verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_all_zero_token_is_rejected_and_not_remembered()
    {
        PacketVerdict verdict = PacketClassifier.Classify(
            RawPacket.Build("GBFD"u8, 1, 2, 1, new byte[16], [1]), 0, 1, _oneRights);

        Assert.Equal(PacketVerdictKind.Rejected, verdict.Kind);
        Assert.Null(verdict.Token);
    }

    [Fact]
    public void A_count_above_sixty_four_is_rejected_even_when_the_length_matches()
    {
        FdToken token = FdToken.NewRandom();
        PacketVerdict verdict = PacketClassifier.Classify(RawPacket.Transfer(token, RawPacket.Files(65)), 0, 65, _oneRights);

        Assert.Equal(PacketVerdictKind.Rejected, verdict.Kind);
        Assert.Contains("outside 1..64", verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_transfer_shorter_than_its_header_is_rejected_without_a_token()
    {
        PacketVerdict verdict = PacketClassifier.Classify(RawPacket.Transfer(FdToken.NewRandom(), FdKind.File).AsSpan(0, 20), 0, 1, _oneRights);

        Assert.Equal(PacketVerdictKind.Rejected, verdict.Kind);
        Assert.Null(verdict.Token);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void A_packet_too_short_to_identify_is_a_protocol_error(int length)
    {
        PacketVerdict verdict = PacketClassifier.Classify(RawPacket.Transfer(FdToken.NewRandom(), FdKind.File).AsSpan(0, length), 0, 0, default);
        Assert.Equal(PacketVerdictKind.ProtocolError, verdict.Kind);
    }

    [Fact]
    public void A_hello_is_exactly_a_header_without_control_data()
    {
        FdToken id = FdToken.NewRandom();
        byte[] hello = RawPacket.Build("GBFD"u8, 1, 1, 0, id.ToByteArray(), []);

        Assert.Equal(PacketVerdict.Hello(id), PacketClassifier.Classify(hello, 0, 0, default));
        Assert.Equal(PacketVerdictKind.ProtocolError, PacketClassifier.Classify(hello, 0, 1, _oneRights).Kind);
        Assert.Equal(PacketVerdictKind.ProtocolError, PacketClassifier.Classify([.. hello, 1], 0, 0, default).Kind);
        Assert.Equal(
            PacketVerdictKind.ProtocolError,
            PacketClassifier.Classify(RawPacket.Build("GBFD"u8, 1, 1, 0, new byte[16], []), 0, 0, default).Kind);
    }
}
