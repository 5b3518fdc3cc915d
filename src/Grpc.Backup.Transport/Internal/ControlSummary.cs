namespace Grpc.Backup.Transport.Internal;

/// <summary>What the control data of one received packet held, besides the fds themselves.</summary>
/// <param name="RightsMessages">Number of SOL_SOCKET/SCM_RIGHTS messages.</param>
/// <param name="OtherMessages">Number of control messages of any other level or type.</param>
internal readonly record struct ControlSummary(int RightsMessages, int OtherMessages);
