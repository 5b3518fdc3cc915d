using System.Text.RegularExpressions;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// Which guests a job backs up: every guest (<c>guests: all</c>), a list, or those carrying one of the tags; minus
/// the exclusions. Resolved against the inventory each time the job runs, so a new guest joins an "all" job.
/// </summary>
internal sealed partial record GuestSelection(bool All, IReadOnlyList<string> Guests, IReadOnlyList<string> Tags, IReadOnlyList<string> Exclude)
{
    /// <summary>
    /// The guests of <paramref name="knownGuests"/> (this host's) the selection names. A listed guest this host does not
    /// run is not its to back up: a cluster job lists the guests of every host, and each host runs its own share (a
    /// host's own jobs are checked against its inventory when they are loaded).
    /// </summary>
    public IReadOnlyList<string> Resolve(IEnumerable<string> knownGuests, Func<string, IReadOnlyCollection<string>> tagsOf)
    {
        var known = knownGuests.ToHashSet(StringComparer.Ordinal);
        IEnumerable<string> chosen = All
            ? known
            : Guests.Where(known.Contains).Concat(known.Where(g => Tags.Count > 0 && tagsOf(g).Intersect(Tags, StringComparer.Ordinal).Any()));
        return chosen.Distinct(StringComparer.Ordinal).Where(g => !Exclude.Contains(g, StringComparer.Ordinal)).Order(StringComparer.Ordinal).ToList();
    }

    public static bool IsPlainName(string name) => PlainName().IsMatch(name);

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}\\z")]
    private static partial Regex PlainName();
}
