namespace Grpc.Backup.Protocol;

/// <summary>The protocol majors this code speaks. The major is the proto package (<c>backup.provider.v1</c>).</summary>
public static class ProtocolVersion
{
    /// <summary>The only major this build implements.</summary>
    public const uint CurrentMajor = 1;

    /// <summary>The error domain carried in <c>google.rpc.ErrorInfo.domain</c>.</summary>
    public const string ErrorDomain = "backup.provider.v1";
}
