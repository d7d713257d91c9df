using System.Globalization;

namespace VqVaeCuda.Modules;

/// <summary>Modules held in order under the names 0, 1, 2, ..., like <c>torch.nn.ModuleList</c>.</summary>
public sealed class ModuleList : Module
{
    private readonly List<Module> _items = [];

    /// <summary>Appends <paramref name="module"/> under the next index; returns it.</summary>
    public T Add<T>(T module) where T : Module
    {
        RegisterModule(_items.Count.ToString(CultureInfo.InvariantCulture), module);
        _items.Add(module);
        return module;
    }

    /// <summary>The modules in order.</summary>
    public IReadOnlyList<Module> Items => _items;
}
