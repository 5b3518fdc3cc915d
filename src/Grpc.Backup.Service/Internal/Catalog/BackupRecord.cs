namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>One backup a storage holds, as its provider listed it; <paramref name="GuestType"/> is the contract's enum name.</summary>
internal sealed record BackupRecord(string Storage, string Archive, string GuestId, DateTime BackupTime, ulong StoredSize, ulong RestoredSize,
    bool Protected, string Notes, bool Incremental, string GuestType = "");
