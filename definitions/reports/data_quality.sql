-- Data quality of the catalog and orders: one row per check, with how many records fail it
-- and a few examples to start from. Period-independent: it describes the data as it is.
select c.check_name, c.failing, coalesce(c.examples, '') as examples
from (
    select 'duplicate category names under one parent' as check_name, count(*) as failing,
           left(string_agg(d.name, ', ' order by d.name collate "C"), 200) as examples
    from (select cat.parent_id, cat.name from product.categories cat
          group by cat.parent_id, cat.name having count(*) > 1) d
    union all
    select 'categories with an empty slug', count(*),
           left(string_agg(cat.id::text, ', ' order by cat.id), 200)
    from product.categories cat where cat.slug = ''
    union all
    select 'active products in inactive categories', count(*),
           left(string_agg(p.id::text, ', ' order by p.id), 200)
    from product.products p join product.categories cat on cat.id = p.category_id
    where not cat.is_active and p.status = 'active'
    union all
    select 'products without images', count(*),
           left(string_agg(p.id::text, ', ' order by p.id), 200)
    from product.products p
    where not exists (select 1 from product.images i where i.product_id = p.id)
    union all
    select 'products without category, brand or description', count(*),
           left(string_agg(p.id::text, ', ' order by p.id), 200)
    from product.products p
    where p.category_id is null or p.brand_id is null or p.description is null
    union all
    select 'products missing a required attribute', count(*),
           left(string_agg(p.id::text, ', ' order by p.id), 200)
    from product.products p
    where exists (select 1 from product.attributes a
                  where a.is_required and not exists (
                      select 1 from product.product_attribute_values v
                      where v.product_id = p.id and v.attribute_id = a.id))
    union all
    select 'SKUs not linked to a product', count(*),
           left(string_agg(sk.code, ', ' order by sk.id), 200)
    from product.skus sk where sk.product_id is null
    union all
    select 'products with an invalid status', count(*),
           left(string_agg(p.id::text || '=' || p.status, ', ' order by p.id), 200)
    from product.products p where p.status not in ('active', 'archived', 'draft')
    union all
    select 'orders with a status not in ref.order_statuses', count(*),
           left(string_agg(o.id::text || '=' || o.status, ', ' order by o.id), 200)
    from orders.orders o
    where not exists (select 1 from ref.order_statuses s where s.code = o.status)
    union all
    select 'orders placed in the period without an address', count(*),
           left(string_agg(o.id::text, ', ' order by o.id), 200)
    from orders.orders o
    where o.address_id is null and o.placed_at >= :period_start and o.placed_at < :period_end
) c
order by c.failing desc, c.check_name collate "C"
