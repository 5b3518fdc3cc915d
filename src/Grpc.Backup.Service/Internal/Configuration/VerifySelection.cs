namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>Which backups of the selected guests a verify job checks (<c>verify:</c> in the job's file).</summary>
internal enum VerifySelection
{
    /// <summary>Each guest's newest backup in the catalog.</summary>
    Latest,

    /// <summary>Every backup of the guests that was never verified.</summary>
    Unverified,
}
