namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>What a job does: back guests up, or verify their backups (<c>kind:</c> in the job's file).</summary>
internal enum JobKind
{
    Backup,
    Verify,
}
